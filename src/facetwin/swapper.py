"""A trained model ready to swap: load a model folder's newest checkpoint and run it on faces, in batches.

``direction`` a2b encodes A's faces and decodes them with B's decoder (A's face becomes B's); b2a the
reverse. The model input is cut straight from the frame through ``frame_to_model`` (alignment, then the
model's coverage), so a face is resampled once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from facetwin.arrays import Affine, FloatImage, Mask, RGBImage
from facetwin.checkpoint import MODEL, load_checkpoint
from facetwin.devices import choose_device, choose_precision, place_model, to_model_input
from facetwin.digest import sha256_file
from facetwin.errors import FacetwinError
from facetwin.faces.align import compose, crop_to_model_matrix
from facetwin.modeldir import ModelDir
from facetwin.models.base import SwapModel
from facetwin.models.registry import build_model

TARGET_SIDE = {"a2b": "b", "b2a": "a"}  # the decoder each direction renders with


@dataclass(frozen=True)
class SwappedFace:
    """The model's output for one face, in model pixels, and the 2x3 matrix from frame to model pixels."""

    face: FloatImage = field(repr=False)  # S x S x 3 float32 in [0, 1]
    learned_mask: Mask | None = field(repr=False)  # S x S float32 in [0, 1], where the model predicts one
    frame_to_model: Affine = field(repr=False)


def model_id(model_name: str, iteration: int, weights: Path) -> str:
    """What the watermark and the credential name: the architecture, the step, and the weights' hash."""
    return f"{model_name}@{iteration}-{sha256_file(weights)[:16]}"


class Swapper:
    """The newest checkpoint of a model folder, on ``device`` in ``precision`` (see facetwin.devices)."""

    def __init__(self, model_dir: ModelDir | Path, device: str = "auto", precision: str = "auto") -> None:
        self.model_dir = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
        config = self.model_dir.read_config()
        self.checkpoint = self.model_dir.latest_checkpoint()
        self.model: SwapModel = build_model(config.model)
        self.state = load_checkpoint(self.checkpoint, self.model, None)
        self.iteration = int(self.state["iteration"])
        self.model_id = model_id(config.model, self.iteration, self.checkpoint / MODEL)
        self.spec = self.model.spec
        self.device = choose_device(device)
        self.dtype = choose_precision(precision, self.device)
        place_model(self.model, self.device).eval()
        # Inference never changes the weights: in bf16, hold them in bf16 once rather than let autocast cast
        # all ~76 M of them again for every batch (same output; 23 -> 12 ms a face at batch 8 on 2 cores).
        self.weights_dtype = torch.bfloat16 if self.dtype == torch.bfloat16 else torch.float32
        self.model.to(self.weights_dtype)

    def frame_to_model(self, frame_to_crop: Affine, crop_size: int) -> Affine:
        """Frame pixels -> model input pixels: the alignment, then the model's coverage of the crop."""
        return compose(crop_to_model_matrix(crop_size, self.spec.size, self.spec.coverage), frame_to_crop)

    @torch.no_grad()
    def swap(self, frames: list[RGBImage], frame_to_crop: list[Affine], crop_size: int, direction: str) -> list[SwappedFace]:
        """Swap one face per (frame, alignment) pair: frames H x W x 3 uint8 RGB, alignments 2x3 frame->crop
        for a ``crop_size`` crop. Raises FacetwinError for an unknown direction."""
        if direction not in TARGET_SIDE:
            raise FacetwinError(f"--direction is a2b or b2a, not {direction!r}")
        if not frames:
            return []
        size = self.spec.size
        matrices = [self.frame_to_model(m, crop_size) for m in frame_to_crop]
        inputs = np.stack([
            cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            for frame, m in zip(frames, matrices, strict=True)
        ]).astype(np.float32) / 255.0  # fmt: skip
        faces, masks = self.run(inputs, TARGET_SIDE[direction])
        return [SwappedFace(faces[i], None if masks is None else masks[i], matrices[i]) for i in range(len(frames))]

    def run(self, images: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``decode`` with this model, device and precision."""
        return decode_with_mask(self.model, images, side, self.device, self.dtype)


@torch.no_grad()
def decode_with_mask(model: SwapModel, images: np.ndarray, side: str, device: torch.device,
                     dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode model-frame images (N x S x S x 3 float32 in [0, 1]) and decode them with ``side``'s decoder,
    in eval mode, under autocast to ``dtype``: faces (N x S x S x 3 float32 in [0, 1]) and the learned
    masks (N x S x S float32 in [0, 1]) or None. The model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        weights_dtype = next(model.parameters()).dtype
        batch = to_model_input(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            face, mask = model(batch.to(weights_dtype), side)
    finally:
        model.train(was_training)
    faces = face.float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1)
    return faces, None if mask is None else mask.float().cpu().numpy()[:, 0]


def decode(model: SwapModel, images: np.ndarray, side: str, device: torch.device, dtype: torch.dtype) -> np.ndarray:
    """The faces of ``decode_with_mask``."""
    return decode_with_mask(model, images, side, device, dtype)[0]
