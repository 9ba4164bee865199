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
from torch.utils.data import Dataset, Sampler, get_worker_info

from facetwin.errors import FacetwinError
from facetwin.facepool import FacePool, model_view
from facetwin.faces.align import compose, crop_to_model_matrix
from facetwin.models.base import SIDES, ModelSpec
from facetwin.options import AugmentSettings, TrainConfig, default_of
from facetwin.scoring.expression import expression, series
from facetwin.train.augment import colour_jitter, jitter_matrix, random_warp

LOSS_MULTIPLIERS = (default_of(TrainConfig, "eye_multiplier"), default_of(TrainConfig, "mouth_multiplier"))
"""(eye, mouth) loss multipliers of a model that does not set them: TrainConfig's defaults."""


def make_sample(
    crop: np.ndarray, points: np.ndarray, spec: ModelSpec, rng: np.random.Generator, settings: AugmentSettings,
    multipliers: tuple[float, float] = LOSS_MULTIPLIERS,
) -> dict[str, np.ndarray]:
    """One training example from a working crop and its landmarks, CHW float32: ``source`` (the randomly
    warped input) and ``target`` (the same face unwarped) in [0, 1], ``mask`` (face hull, {0, 1}) and
    ``priority``, the loss weight the eyes (with brows) and the mouth get on top of the face's 1
    (``multipliers`` = (eye, mouth) multiplier; priority is multiplier - 1 on the feature, 0 elsewhere).
    The jitter (rotation, zoom, shift, flip) and colour change apply to both images; a flip is part of
    the crop-to-model warp, so the view, its masks and the random warp all come out mirrored."""
    size = spec.size
    jitter, flip = jitter_matrix(rng, size, settings)
    if flip:
        jitter = compose(np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]), jitter)
    view = model_view(crop, points, size, compose(jitter, crop_to_model_matrix(crop.shape[0], size, spec.coverage)))
    target = colour_jitter(view.image, rng, settings)
    source = random_warp(target, rng, settings)
    eye, mouth = multipliers
    priority = np.maximum((eye - 1.0) * view.eyes, (mouth - 1.0) * view.mouth)
    return {
        "source": source.transpose(2, 0, 1).copy(),
        "target": target.transpose(2, 0, 1).copy(),
        "mask": view.mask[None],
        "priority": priority[None],
    }


BATCH_LAYOUT = (("source", 3), ("target", 3), ("mask", 1), ("priority", 1))
"""Each side's tensors in a packed batch, with their channels, in the order ``collate_pairs`` packs them."""
BATCH_CHANNELS = len(SIDES) * sum(channels for _, channels in BATCH_LAYOUT)  # planes a face pair fills


def collate_pairs(samples: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """A batch of ``PairDataset`` samples packed into one flat float32 tensor (side by side, each key's
    (N, C, S, S) block in ``BATCH_LAYOUT`` order), made in shared memory inside a DataLoader worker, so one
    storage crosses to the training process instead of eight: each costs a file-descriptor hand-over on
    both sides. Measured through a one-worker DataLoader on the demo sets (lightweight, 4 alternating
    runs, medians): worker 31.1 -> 26.3 ms CPU a batch, training process 3.75 -> 1.89 ms. ``unpack_pairs``
    undoes it without copying."""
    first = samples[0]["a_source"]
    count, size = len(samples), first.shape[-1]
    length = count * BATCH_CHANNELS * size * size
    if get_worker_info() is None:
        flat = torch.empty(length, dtype=torch.float32)
    else:  # straight into shared memory, as torch's default_collate does (share_memory_() would copy it there)
        flat = first.new(first._typed_storage()._new_shared(length, device=first.device))
    for name, block in unpack_pairs(flat, size).items():
        torch.stack([sample[name] for sample in samples], out=block)
    return flat


def unpack_pairs(flat: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """The ``{side}_{key}`` tensors (N, C, size, size) of a batch packed by ``collate_pairs``, as views of it."""
    count, start, blocks = flat.numel() // (BATCH_CHANNELS * size * size), 0, {}
    for side in SIDES:
        for key, channels in BATCH_LAYOUT:
            length = count * channels * size * size
            blocks[f"{side}_{key}"] = flat[start:start + length].view(count, channels, size, size)
            start += length
    return blocks


BALANCES = ("none", "expression")
BALANCE_POWER = 0.5  # a bin of n faces is drawn in proportion to n ** 0.5, not n: rare states come up more
# often without a handful of faces being repeated until memorised


def expression_bins(pool: FacePool) -> np.ndarray:
    """Each face's expression bin (int, 0-26): eyes closed / half / open (mean EAR under 0.6, 0.8 of the
    pool's 90th percentile, else open), mouth shut / parted / open (inner-lip gap under 0.05, 0.2
    inter-ocular distances, else open) and gaze left / centre / right (more than 0.1 half eye-widths
    from the pool's median)."""
    faces = [expression(pool.points(i)) for i in range(len(pool))]
    eyes = series(faces, "eyes")
    open_level = float(np.nanpercentile(eyes, 90)) if len(eyes) else 1.0
    eye_bin = np.digitize(eyes / open_level, [0.6, 0.8])
    mouth_bin = np.digitize(series(faces, "mouth_open"), [0.05, 0.2])
    gaze = series(faces, "gaze_x")
    gaze_bin = np.digitize(gaze - np.nanmedian(gaze), [-0.1, 0.1])
    return (eye_bin * 9 + mouth_bin * 3 + gaze_bin).astype(np.int64)


def draw_weights(pool: FacePool, balance: str) -> np.ndarray | None:
    """Cumulative draw probabilities over the pool's faces (float64, ending at 1), or None for uniform."""
    if balance == "none":
        return None
    if balance != "expression":
        raise FacetwinError(f"--balance is one of {', '.join(BALANCES)}, not {balance!r}")
    bins = expression_bins(pool)
    counts = np.bincount(bins)
    weights = counts[bins].astype(np.float64) ** (BALANCE_POWER - 1)  # each bin's faces share count ** power
    return np.cumsum(weights / weights.sum())


class PairDataset(Dataset[dict[str, torch.Tensor]]):
    """Sample ``k`` is one augmented face of A and one of B, a pure function of (seed, k): keys
    ``{side}_{source,target,mask,priority}`` (see ``make_sample``; ``multipliers`` is its (eye, mouth)
    loss multipliers). With ``balance="expression"`` faces are
    drawn by ``draw_weights`` instead of uniformly."""

    def __init__(self, pools: dict[str, FacePool], spec: ModelSpec, seed: int, settings: AugmentSettings,
                 balance: str = "none", multipliers: tuple[float, float] = LOSS_MULTIPLIERS) -> None:
        self.pools, self.spec, self.seed, self.settings, self.multipliers = pools, spec, seed, settings, multipliers
        self.cumulative = {side: draw_weights(pool, balance) for side, pool in pools.items()}

    def __len__(self) -> int:  # samples are addressed by number, not enumerated
        return 1 << 62

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        item: dict[str, torch.Tensor] = {}
        for side_index, side in enumerate(SIDES):
            rng = np.random.default_rng([self.seed, side_index, k])
            pool = self.pools[side]
            cumulative = self.cumulative[side]
            if cumulative is None:
                i = int(rng.integers(len(pool)))
            else:
                i = min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(pool) - 1)
            sample = make_sample(pool.crop(i), pool.points(i), self.spec, rng, self.settings, self.multipliers)
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
