"""A face set's faces at a model's working size, split into train, held-out and guard faces.

A pool reads each crop resized to the *working* size, ``ceil(spec.size / spec.coverage)``, so that the
model's coverage of it is exactly its input size, and each face's landmarks in those pixels, from the
face set's training cache (facetwin.facecache: decoded once, memory-mapped, shared by every DataLoader
worker; a pickled pool is a path and row numbers). Training (augmented samples) and scoring (clean
samples) both cut their model-frame views from it with ``model_view``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetwin.arrays import Affine, FloatImage, Mask, RGBImage
from facetwin.errors import FacetwinError
from facetwin.facecache import CacheArrays, FaceCache, ProgressCallback, cache_face_set
from facetwin.faces.regions import region_masks
from facetwin.split import FaceKey, Split, split


def working_size(size: int, coverage: float) -> int:
    """Side of a crop whose centred ``coverage`` share is ``size`` pixels (at least that, rounded up)."""
    return int(math.ceil(size / coverage))


@dataclass
class FacePool:
    """One identity's faces: ``crop(i)`` (working x working x 3 uint8 RGB), ``points(i)`` (478 x 2 float32,
    working pixels), the face set ids and the split keys. The pixels stay in the cache files; a pool
    holds which rows are its faces, and maps the files on first use in each process."""

    name: str
    cache: FaceCache = field(repr=False)
    rows: np.ndarray = field(repr=False)  # (N,) int64: cache row of each face
    ids: list[int]
    keys: list[FaceKey] = field(repr=False)
    _arrays: CacheArrays | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, object]:
        """What a DataLoader worker receives: the rows, no pixels, and no ids or keys (a worker only reads
        crops; 50,000 ids and keys took 0.16 s to pickle and 0.19 s to unpickle, twice per worker, on the
        way to the first batch)."""
        return {**self.__dict__, "_arrays": None, "ids": [], "keys": []}

    @property
    def arrays(self) -> CacheArrays:
        if self._arrays is None:
            self._arrays = self.cache.arrays()
        return self._arrays

    @property
    def size(self) -> int:
        return self.cache.size

    def crop(self, i: int) -> RGBImage:
        return self.arrays.crops[self.rows[i]]

    def points(self, i: int) -> np.ndarray:
        return self.arrays.points[self.rows[i]]

    def subset(self, indices: list[int] | np.ndarray) -> FacePool:
        if len(self.ids) != len(self.rows):
            raise RuntimeError(f"{self.name}: a pool received by a DataLoader worker holds rows only; subset it before")
        chosen = np.asarray(indices, dtype=np.int64)
        return FacePool(self.name, self.cache, self.rows[chosen], [self.ids[i] for i in chosen],
                        [self.keys[i] for i in chosen], self._arrays)  # fmt: skip


def load_pool(faceset_path: Path, size: int, progress: ProgressCallback | None = None) -> FacePool:
    """Every face of a set at ``size`` a side, from its training cache (brought up to date first; ``progress``
    is called with (done, total) while faces are decoded). Raises FacetwinError for a missing set or crop,
    a set aligned to another template, or a cache that cannot be written."""
    entries, rows, _ = cache_face_set(Path(faceset_path), size, progress)
    return FacePool(str(faceset_path), FaceCache(Path(faceset_path), size),
                    np.array([rows[e.filename] for e in entries], dtype=np.int64), [e.id for e in entries],
                    [FaceKey(e.source_fingerprint, e.seconds) for e in entries])  # fmt: skip


@dataclass
class SplitPool:
    """A pool divided by ``facetwin.split``: faces to train on, faces held out, and the guard faces
    (too close in time to a held-out face) that neither side uses."""

    train: FacePool
    held_out: FacePool
    guard: int
    note: str | None = None


def split_pool(pool: FacePool, seed: int, holdout: float) -> SplitPool:
    """Split a pool by its face keys (see ``facetwin.split``); the result never moves when faces are
    added or deleted. Raises FacetwinError when no face can be held out or none is left to train on."""
    parts: Split = split(pool.keys, seed, holdout)
    if not parts.held_out:
        raise FacetwinError(f"{pool.name}: too little footage to hold any faces out (needs faces from at least two"
                            " different seconds of video, or two images)")
    if len(parts.train) < 2:
        raise FacetwinError(f"{pool.name}: needs at least 2 faces to train outside the held-out segments,"
                            f" has {len(parts.train)}")
    return SplitPool(pool.subset(parts.train), pool.subset(parts.held_out), len(parts.guard), parts.note)


@dataclass(frozen=True)
class ModelView:
    """A face as a model sees it: image (S x S x 3 float32 in [0, 1]), and its face-hull, eyes (with brows)
    and mouth masks (S x S float32 in {0, 1}), all in model pixels."""

    image: FloatImage
    mask: Mask
    eyes: Mask
    mouth: Mask


def model_view(crop: RGBImage, landmarks: np.ndarray, size: int, crop_to_model: Affine) -> ModelView:
    """Cut the ``size`` x ``size`` model view of a working crop through the 2x3 ``crop_to_model``."""
    image = cv2.warpAffine(crop, crop_to_model, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return ModelView(image.astype(np.float32) / 255.0, *region_masks(landmarks, size, crop_to_model))
