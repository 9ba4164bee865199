"""A face set's faces in memory at a model's working size, split into train, held-out and guard faces.

A pool keeps each crop resized to the *working* size, ``ceil(spec.size / spec.coverage)``, so that the
model's coverage of it is exactly its input size, and each face's landmarks in those pixels. Training
(augmented samples) and scoring (clean samples) both cut their model-frame views from it with
``model_view``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetwin.arrays import Affine, FloatImage, Mask, RGBImage
from facetwin.errors import FacetwinError
from facetwin.faces.align import transform_points
from facetwin.faces.regions import region_masks
from facetwin.faceset import FaceSet
from facetwin.split import FaceKey, Split, split


def working_size(size: int, coverage: float) -> int:
    """Side of a crop whose centred ``coverage`` share is ``size`` pixels (at least that, rounded up)."""
    return int(math.ceil(size / coverage))


@dataclass
class FacePool:
    """One identity's faces: crops (working x working x 3 uint8 RGB), landmarks (478 x 2 float32, working
    pixels), the face set ids and the split keys."""

    name: str
    crops: list[RGBImage] = field(repr=False)
    landmarks: list[np.ndarray] = field(repr=False)
    ids: list[int]
    keys: list[FaceKey] = field(repr=False)

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, indices: list[int] | np.ndarray) -> FacePool:
        return FacePool(
            self.name, [self.crops[i] for i in indices], [self.landmarks[i] for i in indices],
            [self.ids[i] for i in indices], [self.keys[i] for i in indices],
        )  # fmt: skip


def load_pool(faceset_path: Path, size: int) -> FacePool:
    """Read every face of a set, resized to ``size`` a side. Raises FacetwinError for a missing set or crop."""
    crops, points, ids, keys = [], [], [], []
    with FaceSet(faceset_path) as store:
        store.require_current_template()
        for record in store.iter_faces():
            crop = store.load_crop(record)
            scale = size / record.crop_size
            crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
            points.append((transform_points(record.landmarks, record.frame_to_crop) * scale).astype(np.float32))
            ids.append(record.id)
            keys.append(FaceKey(record.source_fingerprint, record.seconds))
    return FacePool(str(faceset_path), crops, points, ids, keys)


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
    """A face as a model sees it: image (S x S x 3 float32 in [0, 1]), face-hull mask and eyes-and-mouth
    priority mask (S x S float32 in [0, 1]), all in model pixels."""

    image: FloatImage
    mask: Mask
    priority: Mask


def model_view(crop: RGBImage, landmarks: np.ndarray, size: int, crop_to_model: Affine) -> ModelView:
    """Cut the ``size`` x ``size`` model view of a working crop through the 2x3 ``crop_to_model``."""
    image = cv2.warpAffine(crop, crop_to_model, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hull, priority = region_masks(landmarks, size, crop_to_model)
    return ModelView(image.astype(np.float32) / 255.0, hull, priority)
