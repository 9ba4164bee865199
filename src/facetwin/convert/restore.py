"""Expression restore: keep the source's own eyes and mouth where its expression leaves what the model renders.

A model trained for minutes on a few thousand talking-head crops has seen few closed eyes and few wide-open
mouths, and renders open eyes through a blink (issue 18: eye-openness correlation 0.16 on the demo). Like
VisoMaster's and FaceFusion's mouth/eye "restore" masks, convert can put the source's own region back,
inside the swapped face and before it is blended into the frame, only while the source's expression is
outside the common range, and feathered so that no seam shows:

- eyes: both eyes (lids and the skin around, not the brow) by the more closed eye's aspect ratio (EAR,
  from the mesh: ``scoring.expression``) against that eye's open level in the track (the 90th
  percentile of its last ``HISTORY`` frames): weight 0 above ``EYE_FROM`` of that level, 1 below
  ``EYE_TO``, smooth between.
  ``scoring.expression`` counts the eyes closed when the more closed one is below 0.42 of its open level;
  on the demo clips every frame of the 7 blinks labelled by eye reads 0.50 or less of this level, and half
  the other frames under 0.90 (cap13) and 0.92 (franck). The ramp 0.70-0.50 restores every blink frame
  fully and touches 122 and 81 other frames of 765 and 960; the ramp it replaced, 0.82-0.62, touched 247
  and 208, which cost the clip's identity (cap13 with --restore both: retrieval 0.84, now 0.93) for an
  eye-openness r within 0.01 (a 2,096-iteration demo model).
  Eyes opened wide (raised brows, surprise) too, by the mean of both eyes' EAR against their typical
  openness (the median of the same history): weight 0 below ``WIDE_FROM`` of it, 1 above ``WIDE_TO``. The
  model renders its own resting eyes there as well: cap13's frames 30-90 open to 0.43-0.45 against a
  median 0.36, and the swap stays at 0.31. Measured with bench/expression.py's clips (a 2,363-iteration
  lightweight; cap13 B->A, franck's first 40 s A->B), eye-openness r: no restore 0.16 and 0.42, blinks
  only (from the smoothed mesh) 0.44 and 0.89, with wide eyes 0.76 and 0.90 (the wide ramp touches about 15 % of the frames).
- mouth: the mouth opening inside the lips, by the inner-lip gap in inter-ocular distances: weight 0 below
  ``MOUTH_FROM``, 1 above ``MOUTH_TO`` (the demo clips' median gap is 0.01-0.02, their 75th percentile
  0.12-0.17, their 90th 0.19-0.23).

The weights come from each frame's mesh as measured, not the track's smoothed one (``convert.tracking``):
the One-Euro filter that steadies the alignment lags a frame and damps a two-frame blink. The regions are
placed with the smoothed mesh, where the swapped face is. The restored pixels are the source's, colour
and all: the model's colour transfer has already matched the swapped face to them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.arrays import Affine, Landmarks, Mask
from facetwin.errors import FacetwinError
from facetwin.faces.regions import INNER_LIPS, LEFT_EYE, RIGHT_EYE
from facetwin.scoring.expression import OPEN_PERCENTILE, expression

RESTORE_CHOICES = ("none", "eyes", "mouth", "both")
MOUTH_CHOICES = ("mouth", "both")  # the --restore settings that keep the mouth, and close the swap's lips (convert.lips)
HISTORY = 250  # frames of a track's eye openness kept for its open-eye level (10 s at 25 fps)
MIN_HISTORY = 12  # frames before the track's own level is trusted
DEFAULT_OPEN_EAR = 0.37  # open-eye EAR until then (the demo clips' 90th percentile: 0.385 cap13, 0.393 franck)
EYE_FROM, EYE_TO = 0.70, 0.50  # fraction of the open level: restore starts, and is complete
WIDE_FROM, WIDE_TO = 1.05, 1.13  # fraction of the typical (median) openness: wide-eye restore starts, is complete
MOUTH_FROM, MOUTH_TO = 0.10, 0.20  # inner-lip gap in inter-ocular distances: restore starts, and is complete
GROW = 0.06  # each region grown by this fraction of the crop, then feathered by as much


@dataclass(frozen=True)
class RestoreWeights:
    """How much of the source to keep in each region: right eye, left eye, mouth, each in [0, 1]."""

    eye_right: float = 0.0
    eye_left: float = 0.0
    mouth: float = 0.0

    @property
    def any(self) -> bool:
        return max(self.eye_right, self.eye_left, self.mouth) > 0.0


def _ramp(value: float, start: float, end: float) -> float:
    """0 at ``start``, 1 at ``end`` (either order), smoothstep between; NaN gives 0."""
    if not np.isfinite(value):
        return 0.0
    t = min(max((value - start) / (end - start), 0.0), 1.0)
    return float(t * t * (3 - 2 * t))


class ExpressionKeeper:
    """Per-track restore weights for one stream. ``regions``: one of ``RESTORE_CHOICES``."""

    def __init__(self, regions: str) -> None:
        if regions not in RESTORE_CHOICES:
            raise FacetwinError(f"--restore is one of {', '.join(RESTORE_CHOICES)}, not {regions!r}")
        self.eyes = regions in ("eyes", "both")
        self.mouth = regions in MOUTH_CHOICES
        self._open: dict[tuple[int, str], deque[float]] = {}

    @property
    def active(self) -> bool:
        return self.eyes or self.mouth

    def weights(self, track: int, landmarks: Landmarks) -> RestoreWeights:
        """The weights for this track's face now (landmarks: its 478-point mesh in frame pixels)."""
        if not self.active:
            return RestoreWeights()
        face = expression(landmarks)
        right = left = mouth = 0.0
        if self.eyes:
            ratios, widths = [], []
            for side, ear in (("right", face.eye_right), ("left", face.eye_left)):
                history = self._open.setdefault((track, side), deque(maxlen=HISTORY))
                known = len(history) >= MIN_HISTORY
                level = float(np.percentile(history, OPEN_PERCENTILE)) if known else DEFAULT_OPEN_EAR
                ratios.append(ear / level)
                widths.append(ear / float(np.median(history)) if known else math.nan)
                if np.isfinite(ear):
                    history.append(ear)
            # both eyes by the more closed one: a blink closes both, but the mesh often follows only one
            # (cap13's blink at frame 98: right EAR 0.03, left 0.37 of an open 0.50); a wink restores an
            # open eye too, which is the source's own and harmless. Wide eyes (raised brows, surprise) by
            # both: the model renders its own resting eyes there too (cap13, frames 30-90: 0.43-0.45
            # against a median 0.36, the swap 0.31)
            closing = _ramp(min(ratios), EYE_FROM, EYE_TO)
            right = left = max(closing, _ramp(float(np.mean(widths)), WIDE_FROM, WIDE_TO))
        if self.mouth:
            mouth = _ramp(face.mouth_open, MOUTH_FROM, MOUTH_TO)
        return RestoreWeights(right, left, mouth)



def restore_mask(landmarks: Landmarks, frame_to_crop: Affine, size: int, weights: RestoreWeights) -> Mask:
    """(size, size) float32 in [0, 1]: each region's hull in the crop, grown and feathered by ``GROW`` of
    the crop, scaled by its weight (the largest where regions meet). The mouth's region is the opening
    inside the lips, the lips stay the swap's: on the demo clips it follows the source's mouth as closely
    as lips and opening together (mouth-openness r 0.988 against 0.989 on cap13) at less cost to the
    target's identity (identity retrieval of the converted clip 0.88 against 0.76). Wider eye regions
    cost identity for nothing: an ellipse of the open eye's extent, or the eye with its brow, followed
    blinks and eye openness no better (bench/expression.py's clips, a 2,363-iteration lightweight)."""
    moved = landmarks[:, :2] @ frame_to_crop[:, :2].T + frame_to_crop[:, 2]
    grow = max(3, int(round(size * GROW))) | 1
    mask = np.zeros((size, size), np.float32)
    for indices, weight in ((RIGHT_EYE, weights.eye_right), (LEFT_EYE, weights.eye_left), (INNER_LIPS, weights.mouth)):
        if weight <= 0.0:
            continue
        region = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(region, cv2.convexHull(moved[list(indices)].round().astype(np.int32)), 255)
        grown = cv2.dilate(region, np.ones((grow, grow), np.uint8))
        soft = cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (0, 0), grow / 2)
        mask = np.maximum(mask, np.clip(soft * 1.5, 0.0, 1.0) * weight)  # a flat core, a soft rim
    mask[mask < 0.02] = 0.0  # the blur's far tail: invisible, and it would touch the whole face
    return mask
