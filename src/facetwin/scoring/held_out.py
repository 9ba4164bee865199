"""The one held-out evaluator: reconstruction, identity, expression and pose on faces training never saw.

Training (its preview-time score and ``--evaluate-every``), ``facetwin evaluate`` and the benches all
score through ``HeldOutEvaluator``, on the same faces (``ModelDir.load_faces``: the model's own split),
so a number means the same everywhere. Reconstruction is scored in a stated ``ScoringFrame``: by default
the model's own (its coverage of the aligned crop at its input size); ``COMMON_FRAME`` scores models of
different framings comparably (their output is warped into it). Identity, expression and pose are
computed on the model's own frame, where the swap is made.

- Reconstruction (a -> a, b -> b): SSIM, PSNR and L1 inside the landmark face hull (scoring.metrics).
- Identity (a -> b, b -> a, and the real faces as reference rows): dlib's 128-d embedding against
  centroids of ``CENTROID_FACES`` training faces of each side (faces.identity).
- Expression and pose: the MediaPipe mesh placed on the swapped face against the mesh on its source
  face, in inter-ocular distances, and head-pose error in degrees (cv2.solvePnP).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from facetwin.arrays import Affine
from facetwin.facepool import FacePool, SplitPool, model_view
from facetwin.faces.align import compose, crop_to_model_matrix, transform_points
from facetwin.faces.identity import FaceEmbedder, identity_scores
from facetwin.modeldir import ModelDir
from facetwin.models.base import ModelSpec, SwapModel
from facetwin.scoring.expression import Expression, expression, fidelity
from facetwin.scoring.metrics import MeshReader, landmark_error, masked_l1, masked_psnr, masked_ssim, pose_error
from facetwin.swapper import decode

CENTROID_FACES = 50  # dlib-bin has no BLAS: ~0.14 s a face on this CPU, so centroids use 50 faces
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ScoringFrame:
    """Where reconstruction is scored: the centred ``coverage`` share of the aligned crop, resized to
    ``size`` px a side, inside the landmark face hull."""

    size: int
    coverage: float

    @classmethod
    def of_model(cls, spec: ModelSpec) -> ScoringFrame:
        return cls(spec.size, spec.coverage)

    def describe(self) -> str:
        return f"{self.coverage:.1%} of the aligned crop at {self.size} px, inside the face hull"


COMMON_FRAME = ScoringFrame(128, 0.625)
"""original's 62.5 % framing at 128 px: the frame bench/compare_models.py compares every model in."""


def evenly(count: int, wanted: int) -> list[int]:
    """Up to ``wanted`` indices spread evenly over ``range(count)`` (all of them when ``wanted >= count``)."""
    if wanted >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(wanted - 1, 1)) for i in range(wanted)})


@dataclass
class FaceBatch:
    """Clean faces of one identity: model inputs (N x S x S x 3 float32), the truth and face-hull masks
    in the scoring frame (N x F x F x 3, N x F x F), mesh points and face boxes in model pixels, and the
    2x3 ``model_to_frame`` that takes a model output into the scoring frame."""

    inputs: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    masks: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)
    boxes: list[Box]
    model_to_frame: Affine = field(repr=False)

    def __len__(self) -> int:
        return len(self.inputs)


def face_batch(pool: FacePool, indices: list[int], spec: ModelSpec, frame: ScoringFrame) -> FaceBatch:
    """Cut ``pool``'s faces at ``indices`` in the model's frame and in the scoring frame."""
    working = pool.size
    crop_to_model = crop_to_model_matrix(working, spec.size, spec.coverage)
    crop_to_frame = crop_to_model_matrix(working, frame.size, frame.coverage)
    model_to_frame = compose(crop_to_frame, cv2.invertAffineTransform(crop_to_model))
    inputs, truth, masks, points = [], [], [], []
    for i in indices:
        inputs.append(model_view(pool.crop(i), pool.points(i), spec.size, crop_to_model).image)
        view = model_view(pool.crop(i), pool.points(i), frame.size, crop_to_frame)
        truth.append(view.image)
        masks.append(view.mask)
        points.append(transform_points(pool.points(i), crop_to_model).astype(np.float32))
    boxes = [(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())) for p in points]
    return FaceBatch(np.stack(inputs), np.stack(truth), np.stack(masks), np.stack(points), boxes, model_to_frame)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


@dataclass
class HeldOutReport:
    model_id: str
    iteration: int
    frame: str  # where reconstruction was scored (ScoringFrame.describe)
    faces: dict[str, int]
    reconstruction: dict[str, dict[str, float]]
    identity: dict[str, dict[str, float]]
    expression: dict[str, dict[str, float]]
    grid: dict[str, np.ndarray] = field(repr=False)  # side -> rows of (source, rebuilt, swapped), model frame
    centroids: dict[str, np.ndarray] = field(repr=False)  # side -> mean embedding of its training faces

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("grid", "centroids")}


class HeldOutEvaluator:
    """A model's held-out faces (and, for identity, its training-face centroids), prepared once; any state
    of a model of that architecture can then be scored (training calls it on the live model).

    ``faces``: both sides' split pools (``ModelDir.load_faces``); ``limit`` held-out faces per side, spread
    evenly; ``identity`` / ``expression`` turn on the slower figures (dlib, MediaPipe mesh)."""

    def __init__(self, faces: Mapping[str, SplitPool], spec: ModelSpec, frame: ScoringFrame | None = None,
                 limit: int = 64, identity: bool = False, expression: bool = False,
                 embedder: FaceEmbedder | None = None) -> None:
        self.spec = spec
        self.frame = frame or ScoringFrame.of_model(spec)
        self.held = {side: face_batch(split.held_out, evenly(len(split.held_out), limit), spec, self.frame)
                     for side, split in faces.items()}  # fmt: skip
        self.expression = expression
        self.embedder: FaceEmbedder | None = None
        self.centroids: dict[str, np.ndarray] = {}
        if identity:
            self.embedder = embedder or FaceEmbedder()
            for side, split in faces.items():
                train = face_batch(split.train, evenly(len(split.train), CENTROID_FACES), spec, ScoringFrame.of_model(spec))
                self.centroids[side] = self.embedder.embed(list(train.inputs), train.boxes).mean(axis=0)

    @classmethod
    def for_model_dir(cls, model_dir: ModelDir, spec: ModelSpec, **options: Any) -> HeldOutEvaluator:
        return cls(model_dir.load_faces(spec.size, spec.coverage), spec, **options)

    def _rebuilt_in_frame(self, faces: FaceBatch, rebuilt: np.ndarray) -> np.ndarray:
        if self.frame == ScoringFrame.of_model(self.spec):
            return rebuilt
        size = (self.frame.size, self.frame.size)
        return np.stack([cv2.warpAffine(face, faces.model_to_frame, size, flags=cv2.INTER_CUBIC,
                                        borderMode=cv2.BORDER_REPLICATE) for face in rebuilt])  # fmt: skip

    def reconstruction(self, model: SwapModel, device: torch.device, dtype: torch.dtype) -> dict[str, dict[str, float]]:
        """Per side: mean SSIM, PSNR (dB) and L1 (0-1 scale) of the held-out faces rebuilt by their own
        decoder, inside the face hull of the scoring frame, and the number of faces."""
        return {side: self._reconstruction(faces, decode(model, faces.inputs, side, device, dtype))
                for side, faces in self.held.items()}  # fmt: skip

    def _reconstruction(self, faces: FaceBatch, rebuilt: np.ndarray) -> dict[str, float]:
        pairs = list(zip(self._rebuilt_in_frame(faces, rebuilt), faces.truth, faces.masks, strict=True))
        return {
            "ssim": _mean([masked_ssim(r, t, m) for r, t, m in pairs]),
            "psnr": _mean([masked_psnr(r, t, m) for r, t, m in pairs]),
            "l1": _mean([masked_l1(r, t, m) for r, t, m in pairs]),
            "faces": float(len(pairs)),
        }

    def evaluate(self, model: SwapModel, device: torch.device, dtype: torch.dtype, model_id: str, iteration: int) -> HeldOutReport:
        """Every figure this evaluator was asked for, on one state of ``model``."""
        reconstruction, identity, expression, grid = {}, {}, {}, {}
        mesh = MeshReader() if self.expression else None
        try:
            for side, other in (("a", "b"), ("b", "a")):
                faces = self.held[side]
                rebuilt = decode(model, faces.inputs, side, device, dtype)
                swapped = decode(model, faces.inputs, other, device, dtype)
                reconstruction[side] = self._reconstruction(faces, rebuilt)
                if self.embedder is not None:
                    real = self.embedder.embed(list(faces.inputs), faces.boxes)
                    fake = self.embedder.embed(list(swapped), faces.boxes)
                    identity[f"real_{side}"] = asdict(identity_scores(real, self.centroids[side], self.centroids[other]))
                    identity[f"{side}2{other}"] = asdict(identity_scores(fake, self.centroids[other], self.centroids[side]))
                if mesh is not None:
                    expression[f"{side}2{other}"] = expression_scores(mesh, swapped, faces.inputs, faces.boxes)
                grid[side] = np.stack([faces.inputs[:8], rebuilt[:8], swapped[:8]], axis=1)
        finally:
            if mesh is not None:
                mesh.close()
        counts = {side: len(faces) for side, faces in self.held.items()}
        return HeldOutReport(model_id, iteration, self.frame.describe(), counts, reconstruction, identity, expression,
                             grid, self.centroids)  # fmt: skip


def expression_scores(mesh: MeshReader, swapped: np.ndarray, sources: np.ndarray, boxes: list[Box]) -> dict[str, float]:
    """Mean mesh error (inter-ocular units) and head-pose error (degrees) of swaps against their sources,
    the share of faces where either mesh was not found, and per-feature expression fidelity over the faces
    (scoring.expression: correlation and mean error of eye openness, mouth and gaze; closed-eye source
    faces whose swap has its eyes closed too)."""
    errors, poses, missed = [], [], 0
    on_sources: list[Expression | None] = []
    on_swaps: list[Expression | None] = []
    for face, source, box in zip(swapped, sources, boxes, strict=True):
        on_swap, on_source = mesh.read(face, box), mesh.read(source, box)
        on_sources.append(None if on_source is None else expression(on_source))
        on_swaps.append(None if on_swap is None else expression(on_swap))
        if on_swap is None or on_source is None:
            missed += 1
            continue
        errors.append(landmark_error(on_swap, on_source))
        poses.append(pose_error(on_swap, on_source, mesh.size))
    follow = fidelity(on_sources, on_swaps, min_frames=1)
    return {"landmark_error_iod": _mean(errors), "pose_error_deg": _mean(poses), "mesh_not_found": missed / max(len(boxes), 1),
            **{f"r_{k}": v for k, v in follow.correlation.items()}, **{f"mae_{k}": v for k, v in follow.mean_abs_error.items()},
            "closed_eyes_source": float(follow.source_blinks), "closed_eyes_reproduced": float(follow.reproduced_blinks)}

