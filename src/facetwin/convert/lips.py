"""Lip closing: where the swap's lips part more than the source's, warp them together towards its gap.

A model trained for minutes renders the target's lips parted where the source's are shut. On the demo
(franck A->B, the 2,096-iteration demo model, ``--restore both``) the face mesh reads the swap's inner-lip
gap over franck's 695 closed-mouth frames as a median 0.05 inter-ocular distances (10th-90th percentile
0.04-0.08) against franck's 0.002, and this drifting offset holds the clip's mouth-openness correlation at
0.93. Putting the source's own lips back there costs the target's identity and, acting in some frames
and not others, makes an offset that comes and goes (the lips: r 0.936 and identity 0.96; the opening
only: r 0.92-0.94). This keeps the swap's lips and moves them instead:

- the mesh is placed again on the pasted swap (``FaceLandmarker.landmarks_near``);
- along each of the nine facing pairs of upper and lower inner-lip points, the swap's gap along the
  face's vertical axis, less the source's gap there and less ``TOLERANCE``, is the excess to close; the
  upper lip moves down and the lower lip up by half of it each, the outer contour with them;
- the skin follows by inverse-distance weighting (Shepard 1968) of those moves and of fixed points (the
  mouth corners and an ellipse around the mouth); nothing outside the ellipse moves.

``TOLERANCE``: the mesh reads a blurred pair of closed lips as parted by about 0.04 inter-ocular
distances whatever their shape (franck frame 300: the swap's gap 3.8 px before closing it fully, 3.5 px
after; an unsharp mask raised it), so only a gap beyond that, a visible opening, is closed. Measured on
franck (bench/expression.py's clip, the demo model, ``--restore both``): mouth-openness r 0.930 without
lip closing, 0.949, 0.958, 0.963, 0.962 and 0.954 with a tolerance of 0, 0.02, 0.03, 0.04 and 0.05, the
clip's identity retrieval 0.979 without, 0.943-0.974 with (rising with the tolerance).

Only closing: where the swap parts its lips less than the source, the mouth restore (``convert.restore``)
shows the source's own opening; stretching closed lips apart would show no mouth inside. The idea is
LivePortrait's lip retargeting (Guo et al. 2024, the lip-open ratio FaceFusion's expression restorer
drives), done here as a 2D warp from two meshes rather than with a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.arrays import Landmarks, RGBImage
from facetwin.faces.landmarks import FaceLandmarker

# MediaPipe face-mesh indices, the subject's right to left: each upper inner-lip point with the lower one
# facing it, and the outer-contour point beside each (they move together: the lip moves as a body)
UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
CORNERS = (78, 308, 61, 291)  # inner and outer mouth corners: fixed
RING_POINTS = 24  # fixed points on the ellipse around the mouth
RING_WIDTH = 1.6  # the ellipse's half-axes: mouth half-width times this, across
RING_HEIGHT = 1.0  # ... and mouth half-width times this, up and down (chin and nose stay put)
TOLERANCE = 0.04  # inter-ocular distances of a gap's excess left alone (the blurred lips' floor; see above)
MIN_CLOSING = 0.5  # pixels: a smaller excess is left alone
FIELD_GRID = 48  # the displacement field is worked out on at most this many points a side, then resized


@dataclass(frozen=True)
class LipClosing:
    """What ``close_lips`` did to one face: the largest gap it closed, in pixels, and in inter-ocular
    distances (0 when it changed nothing)."""

    pixels: float = 0.0
    interocular: float = 0.0


def down_axis(points: np.ndarray) -> np.ndarray:
    """Unit vector from the eye line towards the mouth, perpendicular to the line through the eye corners."""
    across = points[263, :2] - points[33, :2]
    across = across / (np.linalg.norm(across) or 1.0)
    down = np.array([-across[1], across[0]])
    return down if down @ (points[14, :2] - points[168, :2]) > 0 else -down


def lip_gaps(points: Landmarks, down: np.ndarray) -> np.ndarray:
    """(9,) float64: each inner-lip pair's opening along ``down``, in the mesh's pixels (negative: overlap)."""
    return (points[list(LOWER_INNER), :2] - points[list(UPPER_INNER), :2]) @ down


def close_lips(frame: RGBImage, source: Landmarks, swap: Landmarks) -> tuple[RGBImage, LipClosing]:
    """``frame`` (H x W x 3 uint8 RGB, the swap already pasted) with the swap's lips warped together to
    the source's opening wherever they part more, and how much. ``source`` and ``swap``: 478-point meshes
    in ``frame``'s pixels (the source as measured in the input frame, the swap's as placed on ``frame``).
    Pixels outside the ellipse around the swap's mouth are returned unchanged."""
    source_points = np.asarray(source, np.float64)
    points = np.asarray(swap, np.float64)
    down = down_axis(points)
    interocular = float(np.linalg.norm(points[473, :2] - points[468, :2])) or float("nan")
    excess = np.maximum(lip_gaps(points, down) - np.maximum(lip_gaps(source_points, down), 0.0) - TOLERANCE * interocular, 0.0)
    if excess.max() < MIN_CLOSING:
        return frame, LipClosing()
    shift = (excess / 2)[:, None] * down  # (9, 2): the upper lip moves down by this, the lower lip up
    moving = np.concatenate([points[list(UPPER_INNER), :2] + shift, points[list(UPPER_OUTER), :2] + shift,
                             points[list(LOWER_INNER), :2] - shift, points[list(LOWER_OUTER), :2] - shift])  # fmt: skip
    moved = np.concatenate([shift, shift, -shift, -shift])
    centre = points[list(CORNERS), :2].mean(axis=0)
    half_width = float(np.linalg.norm(points[291, :2] - points[61, :2])) / 2
    across = np.array([down[1], -down[0]])
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = (centre + np.outer(np.cos(angles) * RING_WIDTH * half_width, across)
            + np.outer(np.sin(angles) * RING_HEIGHT * half_width, down))  # fmt: skip
    fixed = np.concatenate([points[list(CORNERS), :2], ring])
    targets = np.concatenate([moving, fixed])  # where each control point ends up (the backward map's knots)
    displacement = np.concatenate([moved, np.zeros_like(fixed)])

    height, width = frame.shape[:2]
    x0, y0 = np.floor(ring.min(axis=0)).astype(int)
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame, LipClosing()
    # the field on a grid of at most FIELD_GRID points a side, then resized to every pixel of the box
    step = max(1.0, max(x1 - x0, y1 - y0) / FIELD_GRID)
    columns, rows = max(2, int(np.ceil((x1 - x0) / step))), max(2, int(np.ceil((y1 - y0) / step)))
    ys, xs = np.meshgrid(np.linspace(y0, y1 - 1, rows), np.linspace(x0, x1 - 1, columns), indexing="ij")
    grid = np.stack([xs, ys], axis=-1)  # (rows, columns, 2) frame pixels
    offsets = grid[:, :, None, :] - targets[None, None]  # (rows, columns, K, 2)
    weights = 1.0 / (np.einsum("hwkc,hwkc->hwk", offsets, offsets) + 1e-3)
    field = np.einsum("hwk,kc->hwc", weights, displacement) / weights.sum(axis=-1, keepdims=True)
    relative = grid - centre  # inside the ellipse only, fading out over its outer fifth
    radius = np.hypot(relative @ across / (RING_WIDTH * half_width), relative @ down / (RING_HEIGHT * half_width))
    field *= np.clip((1.0 - radius) / 0.2, 0.0, 1.0)[..., None]
    field = cv2.resize(field.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    pixels = np.stack(np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)), axis=-1)
    maps = pixels - field
    out = frame.copy()
    out[y0:y1, x0:x1] = cv2.remap(frame, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, LipClosing(float(excess.max()), float(excess.max()) / interocular)


def close_swapped_lips(frame: RGBImage, source: Landmarks, landmarker: FaceLandmarker) -> tuple[RGBImage, LipClosing]:
    """Place the mesh on the swap just pasted into ``frame`` where the source's mesh (``source``, frame
    pixels) is, and ``close_lips`` to the source's opening. No mesh found: the frame as it is."""
    swap = landmarker.landmarks_near(frame, source)
    if swap is None:
        return frame, LipClosing()
    return close_lips(frame, source, swap)
