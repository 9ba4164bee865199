"""Where to look for faces of a given smallest size: a pyramid of tiled passes, and merging what they find.

BlazeFace's short-range model sees a 128x128 input and finds a face reliably once it spans about 16
input pixels, up to the whole input (measured on the demo faces pasted into scikit-image's photographs:
99-100 % at 16 px, 17-47 % at 12-13 px; ``bench/extract.py`` checks the result on whole frames). A face
of ``min_face`` frame pixels therefore needs the frame scaled by ``16 / min_face``; where the scaled
frame is larger than 128x128 it is cut into overlapping 128x128 tiles. A tile finds a face whole only if
the face lies inside it, which the overlap guarantees for faces up to about the overlap; larger faces
are left to the next, coarser level (at most half the scale), until one pass over the whole frame suffices.

Everything here is pure geometry on plain numbers; ``facetwin.faces.detect`` runs the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

INPUT = 128  # px: the short-range model's square input (MediaPipe BlazeFace short-range model card)
SMALLEST_FACE = 16.0  # px in the model input: the measured floor above (99-100 % found at 16 px)
OVERLAP = 40  # px in the model input: neighbouring tiles share this much, 31 % of a tile
CONTEXT = 1.25  # assumed: a face is found whole when its box plus 25 % lies in one tile (overlap / 1.25)
VISIBLE = 0.8  # assumed: a face with 80 % of its width in a tile is still found (tiles cover overlap / 0.6)
# Both margins are checked by bench/extract.py's recall by face size, which crosses every level boundary.
ONE_PASS_UP_TO = 10.0  # frames whose long side is at most this many min_face get one whole-frame pass
# (min_face then spans 12.8 to 16 input px). Tiling a 400x300 frame for 40 px faces takes 2 passes instead
# of 1, +5 ms on the 19 ms per frame of detection, mesh and alignment on cap13: 25 % slower extraction.


@dataclass(frozen=True)
class Tile:
    """One model input: the pixels [x0, x1) x [y0, y1) of a level's scaled frame; at most 128x128."""

    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(frozen=True)
class Level:
    """One pass: the frame scaled by ``scale`` (to ``size`` = (width, height) px) and cut into ``tiles``.

    ``whole_frame`` marks the single pass over the unscaled frame, letterboxed by MediaPipe itself
    (then ``scale`` is 128 / the frame's long side and ``tiles`` is empty). ``smallest`` and ``largest``
    are the face sizes in frame pixels (box side) that this level is meant to find.
    """

    scale: float
    size: tuple[int, int]
    tiles: tuple[Tile, ...]
    whole_frame: bool
    smallest: float
    largest: float


def axis_starts(length: int, window: int = INPUT, overlap: int = OVERLAP) -> list[int]:
    """Start offsets of windows of ``window`` px covering ``length`` px, each pair sharing at least
    ``overlap`` px, spread evenly (so the real overlap is as large as the count of windows allows)."""
    if length <= window:
        return [0]
    count = math.ceil((length - overlap) / (window - overlap))
    count = max(count, 2)
    span = length - window
    return [round(i * span / (count - 1)) for i in range(count)]


def _real_overlap(starts: list[int], window: int) -> float:
    if len(starts) < 2:
        return math.inf
    return float(min(window - (b - a) for a, b in zip(starts, starts[1:])))


def plan_levels(width: int, height: int, min_face: float, one_pass_up_to: float = ONE_PASS_UP_TO) -> list[Level]:
    """The passes that find every face of at least ``min_face`` px (box side) in a ``width`` x ``height``
    frame, finest first. A frame whose long side is at most ``one_pass_up_to`` x ``min_face`` gets one
    pass over the whole frame, as before tiling existed: at 8 x (128 / 16) that pass sees every face of
    ``min_face``; between 8 x and 10 x the faces under 1.25 x ``min_face`` are found less reliably
    (``bench/extract.py``'s 400x300 row), which keeps talking-head clips such as cap13 as fast as before.

    Raises ValueError for a frame or face size that is not positive.
    """
    if width <= 0 or height <= 0 or min_face <= 0:
        raise ValueError(f"frame {width}x{height} and min_face {min_face} must be positive")
    levels: list[Level] = []
    face = float(min_face)
    long_side, short_side = max(width, height), min(width, height)
    if long_side <= one_pass_up_to * min_face:
        whole = INPUT / long_side
        return [Level(whole, (width, height), (), True, SMALLEST_FACE / whole, math.inf)]
    while True:
        scale = SMALLEST_FACE / face
        if long_side * scale <= INPUT:
            whole = INPUT / long_side
            levels.append(Level(whole, (width, height), (), True, SMALLEST_FACE / whole, math.inf))
            return levels
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        xs, ys = axis_starts(size[0]), axis_starts(size[1])
        tiles = tuple(
            Tile(x, y, min(x + INPUT, size[0]), min(y + INPUT, size[1])) for y in ys for x in xs
        )
        overlap = min(_real_overlap(xs, INPUT), _real_overlap(ys, INPUT))
        whole_inside = overlap / CONTEXT / scale  # frame px: fits whole, with context, in some tile
        mostly_inside = overlap / (2 * VISIBLE - 1) / scale  # frame px: 80 % of it in some tile
        if mostly_inside >= short_side or math.isinf(overlap):
            levels.append(Level(scale, size, tiles, False, face, math.inf))
            return levels
        levels.append(Level(scale, size, tiles, False, face, whole_inside))
        face = whole_inside


def calls_per_frame(width: int, height: int, min_face: float, one_pass_up_to: float = ONE_PASS_UP_TO) -> int:
    """How many model passes ``plan_levels`` asks for: the detection cost of one frame, in passes."""
    levels = plan_levels(width, height, min_face, one_pass_up_to)
    return sum(1 if level.whole_frame else len(level.tiles) for level in levels)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes, in [0, 1]."""
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def containment(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """The share of the smaller box's area that lies inside the other, in [0, 1]."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def _intersection(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, ix) * max(0.0, iy)


def suppress(
    boxes: Sequence[tuple[float, float, float, float]],
    ranks: Sequence[tuple[float, ...]],
    max_iou: float = 0.3,
    max_containment: float = 0.6,
) -> list[int]:
    """Non-maximum suppression: indices of the boxes to keep, best rank first.

    A box is dropped when a better-ranked kept box overlaps it by more than ``max_iou`` (the same face
    found by two tiles or two levels) or covers more than ``max_containment`` of the smaller one (a
    part of a face, cut by a tile edge, found next to the whole face).
    """
    order = sorted(range(len(boxes)), key=lambda i: ranks[i], reverse=True)
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[j]) <= max_iou and containment(boxes[i], boxes[j]) <= max_containment for j in kept):
            kept.append(i)
    return kept
