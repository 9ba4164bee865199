"""Training previews: held-out faces rebuilt and swapped, the picture a person judges a run by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facetwin.media import write_image
from facetwin.models.base import SwapModel
from facetwin.sheets import grid
from facetwin.swapper import decode

PREVIEW_FACES = 4
COLUMNS = ("A", "A rebuilt", "A as B", "B", "B rebuilt", "B as A")


def _to_images(batch: np.ndarray) -> list[np.ndarray]:
    return list((np.clip(batch, 0, 1) * 255).round().astype(np.uint8))


def write_preview(model: SwapModel, faces: dict[str, np.ndarray], device: torch.device, path: Path) -> Path:
    """A grid, one held-out face per row: A, A rebuilt, A as B, B, B rebuilt, B as A. ``faces``: each
    side's clean held-out faces in the model's frame (N x S x S x 3 float32 in [0, 1]); the first
    PREVIEW_FACES are shown, at 128 px a tile."""
    columns = []
    for side, other in (("a", "b"), ("b", "a")):
        source = faces[side][:PREVIEW_FACES]
        columns.append(_to_images(source))
        columns.append(_to_images(decode(model, source, side, device, torch.float32)))
        columns.append(_to_images(decode(model, source, other, device, torch.float32)))
    rows = min(len(column) for column in columns)
    tiles = [columns[c][r] for r in range(rows) for c in range(len(columns))]
    labels = [COLUMNS[c] for r in range(rows) for c in range(len(columns))]
    return write_image(path, grid(tiles, columns=len(columns), tile=128, labels=labels))
