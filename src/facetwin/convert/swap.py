"""Load a trained model folder and run the swap on aligned crops, in batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from facetwin.devices import choose_device, choose_precision, memory_format, to_model_input
from facetwin.errors import FacetwinError
from facetwin.models.registry import build_model
from facetwin.train.augment import coverage_matrix
from facetwin.provenance.label import sha256_file
from facetwin.train.checkpoint import MODEL, complete_checkpoints, load_checkpoint
from facetwin.train.trainer import resolve_config


@dataclass(frozen=True)
class SwappedFace:
    """The model's output for one face, in model pixels, and the 2x3 matrix from frame to model pixels."""

    face: np.ndarray = field(repr=False)  # S x S x 3 float32 in [0, 1]
    learned_mask: np.ndarray | None = field(repr=False)  # S x S float32 in [0, 1]
    to_model: np.ndarray = field(repr=False)


class Swapper:
    """A trained model ready to swap: ``direction`` a2b encodes A and decodes with B's decoder."""

    def __init__(self, model_dir: Path, device: str = "auto", precision: str = "auto") -> None:
        config = resolve_config(model_dir, None)
        checkpoints = complete_checkpoints(model_dir)
        if not checkpoints:
            raise FacetwinError(f"{model_dir}: no checkpoint yet; train the model first")
        self.model = build_model(config.model)
        self.state = load_checkpoint(checkpoints[-1], self.model, None)
        self.iteration = int(self.state["iteration"])
        self.checkpoint = checkpoints[-1]
        # What the watermark and the credential name: the architecture, the step, and the weights' hash.
        self.model_id = f"{config.model}@{self.iteration}-{sha256_file(self.checkpoint / MODEL)[:16]}"
        self.spec = self.model.spec
        self.device = choose_device(device)
        self.dtype = choose_precision(precision, self.device)
        self.model = self.model.to(self.device).to(memory_format=memory_format(self.device)).eval()
        # Inference never changes the weights: in bf16, hold them in bf16 once rather than let autocast cast
        # all ~76 M of them again for every batch (same output; 23 -> 12 ms a face at batch 8 on 2 cores).
        self.weights_dtype = torch.bfloat16 if self.dtype == torch.bfloat16 else torch.float32
        self.model = self.model.to(self.weights_dtype)

    def model_matrix(self, align_matrix: np.ndarray, crop_size: int) -> np.ndarray:
        """Frame pixels -> model input pixels: the alignment, then the model's coverage crop."""
        cover = np.vstack([coverage_matrix(crop_size, self.spec.size, self.spec.coverage), [0, 0, 1]])
        return (cover @ np.vstack([align_matrix, [0, 0, 1]]))[:2]

    @torch.no_grad()
    def swap(self, frames: list[np.ndarray], align_matrices: list[np.ndarray], crop_size: int, direction: str) -> list[SwappedFace]:
        """Swap one face per (frame, matrix) pair; the model input is cut straight from the frame."""
        if not frames:
            return []
        side = {"a2b": "b", "b2a": "a"}[direction]
        size = self.spec.size
        matrices = [self.model_matrix(m, crop_size) for m in align_matrices]
        inputs = np.stack([
            cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            for frame, m in zip(frames, matrices, strict=True)
        ]).astype(np.float32) / 255.0  # fmt: skip
        batch = to_model_input(torch.from_numpy(inputs.transpose(0, 3, 1, 2)), self.device).to(self.weights_dtype)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            face, mask = self.model(batch, side)
        faces = face.float().cpu().numpy().transpose(0, 2, 3, 1)
        masks = None if mask is None else mask.float().cpu().numpy()[:, 0]
        return [
            SwappedFace(faces[i], None if masks is None else masks[i], matrices[i]) for i in range(len(frames))
        ]
