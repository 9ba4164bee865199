"""Training data: both identities' training faces served as augmented pairs, a pure function of the step.

A sample is addressed by a number ``k``; its face and every random choice come from a generator seeded
with (seed, side, k). The sampler hands out numbers in a fixed order that depends only on the
iteration, the rank and the batch size, so a resumed run (or one with other worker counts) sees
exactly the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from facetwin.facepool import FacePool, model_view
from facetwin.faces.align import compose, crop_to_model_matrix
from facetwin.models.base import SIDES, ModelSpec
from facetwin.options import AugmentSettings
from facetwin.train.augment import colour_jitter, jitter_matrix, random_warp


def make_sample(
    crop: np.ndarray, points: np.ndarray, spec: ModelSpec, rng: np.random.Generator, settings: AugmentSettings
) -> dict[str, np.ndarray]:
    """One training example from a working crop and its landmarks, CHW float32 in [0, 1]: ``source`` (the
    randomly warped input), ``target`` (the same face unwarped), ``mask`` (face hull) and ``priority``
    (eyes and mouth). The jitter (rotation, zoom, shift, flip) and colour change apply to both."""
    size = spec.size
    jitter, flip = jitter_matrix(rng, size, settings)
    view = model_view(crop, points, size, compose(jitter, crop_to_model_matrix(crop.shape[0], size, spec.coverage)))
    target = colour_jitter(view.image, rng, settings).astype(np.float32)
    source = random_warp(target, rng, settings)
    hull, priority = view.mask, view.priority
    if flip:
        target, source, hull, priority = (np.ascontiguousarray(x[:, ::-1]) for x in (target, source, hull, priority))
    return {
        "source": source.transpose(2, 0, 1).copy(),
        "target": target.transpose(2, 0, 1).copy(),
        "mask": hull[None],
        "priority": priority[None],
    }


class PairDataset(Dataset[dict[str, torch.Tensor]]):
    """Sample ``k`` is one augmented face of A and one of B, a pure function of (seed, k): keys
    ``{side}_{source,target,mask,priority}`` (see ``make_sample``)."""

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
            sample = make_sample(pool.crop(i), pool.points(i), self.spec, rng, self.settings)
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


def worker_init(_: int) -> None:
    """DataLoader workers share two cores with training: one thread each, no OpenCV pool."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
