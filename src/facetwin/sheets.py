"""Contact sheets: a grid of face crops that a person can scan in a second."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facetwin.faceset import FaceSet
from facetwin.media import write_image


def grid(images: Sequence[np.ndarray], columns: int, tile: int, labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile RGB images into one RGB image, ``tile`` pixels a side, with an optional label under each."""
    rows = max(1, -(-len(images) // columns))
    label_height = 14 if labels else 0
    sheet = np.full((rows * (tile + label_height), columns * tile, 3), 24, dtype=np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        y, x = row * (tile + label_height), col * tile
        sheet[y : y + tile, x : x + tile] = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
        if labels:
            cv2.putText(sheet, labels[i][: tile // 8], (x + 2, y + tile + 11), cv2.FONT_HERSHEY_PLAIN, 0.8, (220, 220, 220))
    return sheet


def contact_sheet(faceset: FaceSet, path: str | os.PathLike[str], count: int = 64, tile: int = 96) -> Path:
    """Write a sheet of ``count`` faces sampled evenly over the set, labelled with source and frame."""
    records = faceset.faces()
    if not records:
        raise ValueError(f"{faceset.root}: the face set holds no faces")
    picks = np.unique(np.linspace(0, len(records) - 1, min(count, len(records))).round().astype(int))
    chosen = [records[i] for i in picks]
    images = [faceset.load_crop(r) for r in chosen]
    labels = [f"{Path(r.source).stem[:5]}#{r.frame_index}" for r in chosen]
    return write_image(path, grid(images, columns=8, tile=tile, labels=labels))


def face_sheet(faceset: FaceSet, filenames: Sequence[str], path: str | os.PathLike[str], labels: Sequence[str] | None = None,
               columns: int = 8, tile: int = 96) -> Path:  # fmt: skip
    """Write the faces with these crop file names, in this order, as a grid (RGB PNG, ``tile`` px a face),
    each labelled with ``labels`` or else its source and frame. Raises ValueError for no faces."""
    records = faceset.records_for(list(filenames))
    if not records:
        raise ValueError(f"{faceset.root}: none of these faces is in the set")
    if labels is None:
        labels = [f"{Path(r.source).stem[:5]}#{r.frame_index}" for r in records]
    elif len(records) != len(filenames):
        kept = {r.filename for r in records}
        labels = [label for name, label in zip(filenames, labels, strict=True) if name in kept]
    images = [faceset.load_crop(r) for r in records]
    return write_image(path, grid(images, columns=columns, tile=tile, labels=labels))
