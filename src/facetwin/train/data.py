"""Training data: two face sets, split into train and held-out, served as augmented batches.

A sample is addressed by a number ``k``; its face and every random choice come from a generator
seeded with (seed, side, k). The sampler hands out numbers in a fixed order that depends only on the
iteration, the rank and the batch size, so a resumed run (or one with other worker counts) sees
exactly the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from mediapipe.python.solutions import face_mesh_connections as mesh
from torch.utils.data import Dataset, Sampler

from facetwin.errors import FacetwinError
from facetwin.faces.align import transform_points
from facetwin.faceset import FaceSet
from facetwin.models.base import ModelSpec
from facetwin.train.augment import (
    AugmentSettings,
    colour_jitter,
    compose,
    coverage_matrix,
    jitter_matrix,
    random_warp,
)

FACE_OVAL = sorted({i for edge in mesh.FACEMESH_FACE_OVAL for i in edge})
EYE_REGIONS = [
    sorted({i for edge in part for i in edge})
    for part in (
        mesh.FACEMESH_LEFT_EYE | mesh.FACEMESH_LEFT_EYEBROW,
        mesh.FACEMESH_RIGHT_EYE | mesh.FACEMESH_RIGHT_EYEBROW,
    )
]
MOUTH = sorted({i for edge in mesh.FACEMESH_LIPS for i in edge})
SIDES = ("a", "b")


@dataclass
class FacePool:
    """One identity's faces in memory: crops at working size and their landmarks in crop pixels."""

    name: str
    crops: list[np.ndarray] = field(repr=False)
    landmarks: list[np.ndarray] = field(repr=False)
    ids: list[int]

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, indices: np.ndarray) -> FacePool:
        return FacePool(
            self.name, [self.crops[i] for i in indices], [self.landmarks[i] for i in indices], [self.ids[i] for i in indices]
        )


def load_pool(faceset_path: Path, working_size: int) -> FacePool:
    """Read every face of a set, resized to ``working_size`` (enough for the model's coverage)."""
    crops, points, ids = [], [], []
    with FaceSet(faceset_path) as store:
        for record in store.iter_faces():
            crop = store.load_crop(record)
            scale = working_size / record.crop_size
            crops.append(cv2.resize(crop, (working_size, working_size), interpolation=cv2.INTER_AREA))
            points.append((transform_points(record.landmarks, record.matrix) * scale).astype(np.float32))
            ids.append(record.id)
    if len(crops) < 2:
        raise FacetwinError(f"{faceset_path}: needs at least 2 faces to train, has {len(crops)}")
    return FacePool(str(faceset_path), crops, points, ids)


def split_pool(pool: FacePool, holdout: float, seed: int) -> tuple[FacePool, FacePool]:
    """(train, held-out), the held-out share fixed by the seed and the face ids (stable across runs)."""
    order = np.random.default_rng(seed).permutation(len(pool))
    count = max(1, int(round(len(pool) * holdout)))
    return pool.subset(np.sort(order[count:])), pool.subset(np.sort(order[:count]))


def region_masks(points: np.ndarray, size: int, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face hull mask and eyes+mouth mask (each HxW float32 in [0, 1]) in model-input pixels."""
    moved = transform_points(points, matrix)
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(moved[FACE_OVAL].round().astype(np.int32)), 255)
    priority = np.zeros((size, size), np.uint8)
    for region in (*EYE_REGIONS, MOUTH):
        cv2.fillConvexPoly(priority, cv2.convexHull(moved[region].round().astype(np.int32)), 255)
    grow = max(3, size // 32) | 1
    priority = cv2.dilate(priority, np.ones((grow, grow), np.uint8))
    return hull.astype(np.float32) / 255.0, priority.astype(np.float32) / 255.0


def make_sample(
    crop: np.ndarray,
    points: np.ndarray,
    spec: ModelSpec,
    rng: np.random.Generator | None,
    settings: AugmentSettings,
) -> dict[str, np.ndarray]:
    """One training example (``rng``) or one clean held-out example (``rng=None``), CHW float32."""
    size = spec.size
    matrix = coverage_matrix(crop.shape[0], size, spec.coverage)
    flip = False
    if rng is not None:
        jitter, flip = jitter_matrix(rng, size, settings)
        matrix = compose(jitter, matrix)
    target = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hull, priority = region_masks(points, size, matrix)
    target = target.astype(np.float32) / 255.0
    if rng is not None:
        target = colour_jitter(target, rng, settings).astype(np.float32)
        source = random_warp(target, rng, settings)
    else:
        source = target
    if flip:
        target, source, hull, priority = (np.ascontiguousarray(x[:, ::-1]) for x in (target, source, hull, priority))
    return {
        "source": source.transpose(2, 0, 1).copy(),
        "target": target.transpose(2, 0, 1).copy(),
        "mask": hull[None],
        "priority": priority[None],
    }


class PairDataset(Dataset[dict[str, torch.Tensor]]):
    """Sample ``k`` is one augmented face of A and one of B, a pure function of (seed, k)."""

    def __init__(self, pools: dict[str, FacePool], spec: ModelSpec, seed: int, settings: AugmentSettings) -> None:
        self.pools, self.spec, self.seed, self.settings = pools, spec, seed, settings

    def __len__(self) -> int:  # samples are addressed by number, not enumerated
        return 1 << 62

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        item: dict[str, torch.Tensor] = {}
        for side_index, side in enumerate(SIDES):
            rng = np.random.default_rng([self.seed, side_index, k])
            pool = self.pools[side]
            i = int(rng.integers(len(pool)))
            sample = make_sample(pool.crops[i], pool.landmarks[i], self.spec, rng, self.settings)
            item.update({f"{side}_{key}": torch.from_numpy(value) for key, value in sample.items()})
        return item


class StepSampler(Sampler[int]):
    """Sample numbers for iterations ``start`` to ``stop``: rank r of w takes block (it * w + r)."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        self.start, self.stop, self.batch_size, self.rank, self.world_size = start, stop, batch_size, rank, world_size

    def __iter__(self) -> Iterator[int]:
        for iteration in range(self.start, self.stop):
            base = (iteration * self.world_size + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch_size


def held_out_batch(pool: FacePool, spec: ModelSpec, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Clean (un-augmented) held-out faces as one batch."""
    count = len(pool) if limit is None else min(limit, len(pool))
    samples = [make_sample(pool.crops[i], pool.landmarks[i], spec, None, AugmentSettings()) for i in range(count)]
    return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}


def worker_init(_: int) -> None:
    """DataLoader workers share two cores with training: one thread each, no OpenCV pool."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
