"""How stored pixels become the picture a viewer sees: a video's display matrix, an image's EXIF orientation.

Phones store portrait video sideways and say so in a display matrix; cameras store photos as the sensor
saw them and say so in the EXIF orientation tag. Both come down to one of eight transforms: a rotation
by a multiple of 90 degrees, optionally followed by a left-right mirror. facetwin reads every frame
upright (``Orientation.upright``) and writes it upright with no rotation tag (see ``facetwin.media.plan``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Orientation:
    """Rotate the stored pixels ``rotation`` degrees counter-clockwise (0, 90, 180 or 270), then mirror
    left-right when ``mirror``: the result is what a player shows."""

    rotation: int = 0
    mirror: bool = False

    @property
    def identity(self) -> bool:
        return self.rotation == 0 and not self.mirror

    @property
    def swaps_sides(self) -> bool:
        """True when the upright picture's width is the stored height."""
        return self.rotation in (90, 270)

    def upright(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, ...) stored pixels to the upright picture (a contiguous copy unless nothing changes)."""
        if self.identity:
            return pixels
        turned = np.rot90(pixels, self.rotation // 90)
        return np.ascontiguousarray(turned[:, ::-1] if self.mirror else turned)

    def stored(self, pixels: np.ndarray) -> np.ndarray:
        """The inverse of ``upright``: the upright picture back to the stored layout."""
        if self.identity:
            return pixels
        unmirrored = pixels[:, ::-1] if self.mirror else pixels
        return np.ascontiguousarray(np.rot90(unmirrored, -(self.rotation // 90)))

    def describe(self) -> str:
        """E.g. 'rotated 90° clockwise', 'rotated 180°, mirrored'."""
        turn = {0: "", 90: "rotated 90° counter-clockwise", 180: "rotated 180°", 270: "rotated 90° clockwise"}[self.rotation]
        return ", ".join(part for part in (turn, "mirrored" if self.mirror else "") if part) or "upright"


def from_display_matrix(matrix: tuple[int, ...] | None) -> tuple[Orientation, float]:
    """The orientation of FFmpeg's 3x3 display matrix (nine int32, 16.16 fixed point, as stored in MP4,
    MOV and Matroska), and the exact angle it states in degrees counter-clockwise.

    The matrix maps a stored pixel (p, q) to (a p + c q, b p + d q) (a, b, c, d = matrix[0], [1], [3],
    [4]); a negative determinant means a mirror, applied by FFmpeg to the first column. An angle that
    is not a multiple of 90 degrees is rounded to the nearest one (the caller reports it)."""
    if matrix is None or len(matrix) < 5:
        return Orientation(), 0.0
    a, b, c, d = (value / 65536 for value in (matrix[0], matrix[1], matrix[3], matrix[4]))
    mirror = a * d - b * c < 0
    if mirror:
        a, c = -a, -c
    angle = -math.degrees(math.atan2(b, a))  # FFmpeg's av_display_rotation_get, counter-clockwise
    rotation = int(round(angle / 90)) % 4 * 90
    return Orientation(rotation, mirror), angle % 360


# EXIF tag 0x0112 (TIFF 6.0): 1 as stored, 2 mirrored, 3 rotated 180°, 4 flipped upside down, 5 transposed,
# 6 needs 90° clockwise, 7 transversed, 8 needs 90° counter-clockwise.
EXIF_ORIENTATIONS = {
    1: Orientation(0, False), 2: Orientation(0, True), 3: Orientation(180, False), 4: Orientation(180, True),
    5: Orientation(270, True), 6: Orientation(270, False), 7: Orientation(90, True), 8: Orientation(90, False),
}  # fmt: skip


def from_exif(tag: int | None) -> Orientation:
    """The orientation of an EXIF orientation value (1-8); anything else means as stored."""
    return EXIF_ORIENTATIONS.get(tag or 1, Orientation())
