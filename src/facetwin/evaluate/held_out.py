"""Quality on the model's held-out faces: the split that train kept aside (same seed, same share).

For each identity's held-out faces: the reconstruction by its own decoder (SSIM, PSNR, L1 inside the
face mask), the swap by the other decoder, who each looks like (dlib embeddings against centroids of
the training faces), and whether the swap kept the source's expression and head pose (the mesh placed
on the swapped face against the mesh placed, the same way, on the source face).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facetwin.convert.swap import Swapper
from facetwin.devices import to_model_input
from facetwin.evaluate.identity import FaceEmbedder, identity_scores
from facetwin.evaluate.metrics import landmark_error, masked_l1, masked_psnr, masked_ssim, pose_error
from facetwin.faces.align import transform_points
from facetwin.faces.detect import Detection
from facetwin.faces.landmarks import FaceLandmarker
from facetwin.models.base import ModelSpec, SwapModel
from facetwin.train.augment import AugmentSettings, coverage_matrix
from facetwin.train.data import FacePool, load_pool, make_sample, split_pool
from facetwin.train.trainer import TrainConfig, resolve_config

MESH_SIZE = 256  # model outputs are scaled to this before the mesh is placed on them
CENTROID_FACES = 50  # dlib-bin has no BLAS: ~0.14 s a face on this CPU, so centroids use 50 faces


@dataclass
class FaceBatch:
    """Clean faces of one identity at the model's framing, with their mesh and face box in model pixels."""

    images: np.ndarray  # N x S x S x 3 float32
    masks: np.ndarray  # N x S x S
    points: np.ndarray  # N x 478 x 2
    boxes: list[tuple[float, float, float, float]]


def _batch(pool: FacePool, indices: list[int], spec: ModelSpec) -> FaceBatch:
    samples = [make_sample(pool.crops[i], pool.landmarks[i], spec, None, AugmentSettings()) for i in indices]
    to_model = coverage_matrix(pool.crops[0].shape[0], spec.size, spec.coverage)
    points = np.stack([transform_points(pool.landmarks[i], to_model) for i in indices]).astype(np.float32)
    boxes = [(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())) for p in points]
    return FaceBatch(
        np.stack([s["target"].transpose(1, 2, 0) for s in samples]),
        np.stack([s["mask"][0] for s in samples]),
        points,
        boxes,
    )


def _evenly(count: int, wanted: int) -> list[int]:
    return sorted({round(i * (count - 1) / max(wanted - 1, 1)) for i in range(min(count, wanted))})


@torch.no_grad()
def _run(model: SwapModel, device: torch.device, dtype: torch.dtype, images: np.ndarray, side: str) -> np.ndarray:
    batch = to_model_input(torch.from_numpy(images.transpose(0, 3, 1, 2)), device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        face, _ = model(batch, side)
    return face.float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1)


class MeshReader:
    """The MediaPipe mesh on a model-sized face, scaled up first (the mesh model wants ~192 px)."""

    def __init__(self) -> None:
        self._landmarker = FaceLandmarker()

    def read(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        scale = MESH_SIZE / image.shape[1]
        big = cv2.resize(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), (MESH_SIZE, MESH_SIZE), interpolation=cv2.INTER_CUBIC)
        x0, y0, x1, y1 = (v * scale for v in box)
        points = self._landmarker.landmarks(big, Detection((x0, y0, x1 - x0, y1 - y0), 1.0, np.zeros((6, 2), np.float32)))
        return None if points is None else points[:, :2]

    def close(self) -> None:
        self._landmarker.close()


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def expression_scores(mesh: MeshReader, swapped: np.ndarray, sources: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> dict[str, float]:
    errors, poses, missed = [], [], 0
    for face, source, box in zip(swapped, sources, boxes, strict=True):
        on_swap, on_source = mesh.read(face, box), mesh.read(source, box)
        if on_swap is None or on_source is None:
            missed += 1
            continue
        errors.append(landmark_error(on_swap, on_source))
        poses.append(pose_error(on_swap, on_source, MESH_SIZE))
    return {"landmark_error_iod": _mean(errors), "pose_error_deg": _mean(poses), "mesh_not_found": missed / max(len(boxes), 1)}


@dataclass
class HeldOutReport:
    model_id: str
    iteration: int
    faces: dict[str, int]
    reconstruction: dict[str, dict[str, float]]
    identity: dict[str, dict[str, float]]
    expression: dict[str, dict[str, float]]
    grid: dict[str, np.ndarray]  # side -> rows of (source, rebuilt, swapped), for the report
    centroids: dict[str, np.ndarray]  # side -> mean embedding of its training faces

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("grid", "centroids")}


class HeldOutEvaluator:
    """The held-out faces and the identity centroids, prepared once; `evaluate` scores any state of a
    model on them (train --evaluate-every calls it on the live model)."""

    def __init__(self, config: TrainConfig, spec: ModelSpec, embedder: FaceEmbedder | None = None,
                 limit: int = 64, fast: bool = False) -> None:
        working = int(math.ceil(spec.size / spec.coverage))
        pools = {side: load_pool(Path(path), working) for side, path in (("a", config.faceset_a), ("b", config.faceset_b))}
        splits = {side: split_pool(pool, config.holdout, config.seed) for side, pool in pools.items()}
        self.held = {side: _batch(split[1], _evenly(len(split[1]), limit), spec) for side, split in splits.items()}
        train = {side: _batch(split[0], _evenly(len(split[0]), CENTROID_FACES), spec) for side, split in splits.items()}
        self.embedder = embedder or FaceEmbedder()
        self.centroids = {side: self.embedder.embed(list(b.images), b.boxes).mean(axis=0) for side, b in train.items()}
        self.fast = fast

    def evaluate(self, model: SwapModel, device: torch.device, dtype: torch.dtype, model_id: str, iteration: int) -> HeldOutReport:
        reconstruction, identity, expression, grid = {}, {}, {}, {}
        mesh = None if self.fast else MeshReader()
        was_training = model.training
        model.eval()
        try:
            for side, other in (("a", "b"), ("b", "a")):
                faces = self.held[side]
                rebuilt = _run(model, device, dtype, faces.images, side)
                swapped = _run(model, device, dtype, faces.images, other)
                pairs = list(zip(rebuilt, faces.images, faces.masks, strict=True))
                reconstruction[side] = {
                    "ssim": _mean([masked_ssim(r, t, m) for r, t, m in pairs]),
                    "psnr": _mean([masked_psnr(r, t, m) for r, t, m in pairs]),
                    "l1": _mean([masked_l1(r, t, m) for r, t, m in pairs]),
                }
                real = self.embedder.embed(list(faces.images), faces.boxes)
                fake = self.embedder.embed(list(swapped), faces.boxes)
                identity[f"real_{side}"] = asdict(identity_scores(real, self.centroids[side], self.centroids[other]))
                identity[f"{side}2{other}"] = asdict(identity_scores(fake, self.centroids[other], self.centroids[side]))
                if mesh is not None:
                    expression[f"{side}2{other}"] = expression_scores(mesh, swapped, faces.images, faces.boxes)
                grid[side] = np.stack([faces.images[:8], rebuilt[:8], swapped[:8]], axis=1)
        finally:
            model.train(was_training)
            if mesh is not None:
                mesh.close()
        faces_count = {s: len(b.images) for s, b in self.held.items()}
        return HeldOutReport(model_id, iteration, faces_count, reconstruction, identity, expression, grid, self.centroids)


def evaluate_held_out(
    model_dir: Path,
    device: str = "auto",
    limit: int = 64,
    embedder: FaceEmbedder | None = None,
    fast: bool = False,
) -> HeldOutReport:
    """All held-out metrics of a model folder's last checkpoint. `fast` leaves out the mesh-based
    expression and pose figures (the slow part)."""
    swapper = Swapper(model_dir, device)
    evaluator = HeldOutEvaluator(resolve_config(model_dir, None), swapper.spec, embedder, limit, fast)
    return evaluator.evaluate(swapper.model, swapper.device, swapper.dtype, swapper.model_id, swapper.iteration)
