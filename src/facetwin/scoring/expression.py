"""Expression from the face mesh, per face, and how faithfully a swap follows its source's.

Per face (``expression``): eye openness of each eye as the eye aspect ratio (EAR: the two lid-to-lid
distances over twice the corner-to-corner width; Soukupova and Cech, "Real-Time Eye Blink Detection
using Facial Landmarks", CVWW 2016), mouth openness (inner-lip gap) and width (corner to corner), both
in inter-ocular distances, and gaze: each iris centre's offset from its eye's centre along and across
the line through the outer eye corners, in half eye-widths (about -1 to 1), averaged over both eyes.

Over a clip or a set of faces (``fidelity``): for each feature, the Pearson correlation between the
source's and the swap's values and their mean absolute difference; and blinks: runs of at least
``BLINK_FRAMES`` frames with the eyes closed, and the share of the source's blinks during which the swap's
eyes close too (within one frame of the blink). Eyes are closed when the more closed eye's EAR is below
``CLOSED_FRACTION`` of that eye's own open level in the series (``eye_openness``: each eye against its own
90th percentile, so a face whose eyes are narrower at rest, or one eye foreshortened by a turned head, is
judged against itself). The more closed eye, not the mean of both: on the demo clips' turned faces the mesh
often follows a blink in one eye only (franck, frame 882: right eye 0.05 of an open 0.28, left 0.40 of an
open 0.50, while both are visibly shut), and a mean halves such a blink's depth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from facetwin.arrays import Landmarks

# Mesh points in the order the EAR formula takes them: outer corner, two upper lid points, inner corner,
# the two lower lid points below them (MediaPipe's canonical face mesh indices).
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (263, 387, 385, 362, 373, 380)
RIGHT_IRIS, LEFT_IRIS = 468, 473
MOUTH_INNER = (13, 14)  # upper and lower inner lip, on the midline
MOUTH_CORNERS = (61, 291)
CLOSED_FRACTION = 0.42  # eyes closed: the more closed eye below 42 % of its open EAR. Measured on the demo clips
# (cap13, franck's first 40 s) against blinks labelled by eye in every stretch where an eye fell below 70 %: the
# 7 blinks' deepest frames read 0.04-0.36, the 4 non-blinks (a laughing squint, glances down) 0.48 and over;
# 0.42 is halfway. It finds 6 of the 7 (cap13's blink at 426 reads 0.48 then 0.36: one frame under) and no
# non-blink; the mean of both eyes under 60 % of its open level, the count before, found 5 and missed franck
# 591 and cap13 426
OPEN_PERCENTILE = 90  # an eye's open level: the 90th percentile of its EAR over the series
BLINK_FRAMES = 2  # a blink: eyes closed for at least two frames
REOPEN_FRACTION = 0.7  # a blink ends when the eyes open past 70 % of the open level (hysteresis: on demo footage
# a reopening eye wobbled 0.26 -> 0.27 -> 0.26 around the closed line, 0.26, and was counted as two blinks)
FEATURES = ("eye_right", "eye_left", "mouth_open", "mouth_width", "gaze_x", "gaze_y")


@dataclass(frozen=True)
class Expression:
    eye_right: float  # EAR, about 0.28 open, under 0.15 closed
    eye_left: float
    mouth_open: float  # inner-lip gap, inter-ocular distances
    mouth_width: float  # corner to corner, inter-ocular distances
    gaze_x: float  # iris offset along the eye line, half eye-widths (positive: towards the image's right)
    gaze_y: float  # iris offset across it, half eye-widths (positive: down in the image)

    @property
    def eyes(self) -> float:
        return (self.eye_right + self.eye_left) / 2


def _ear(points: np.ndarray, indices: tuple[int, ...]) -> float:
    p1, p2, p3, p4, p5, p6 = (points[i] for i in indices)
    width = float(np.linalg.norm(p1 - p4))
    return float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * width) if width > 0 else math.nan


def expression(landmarks: Landmarks) -> Expression:
    """The expression of one face from its 478-point mesh (x, y in any pixels; z ignored)."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    right_centre, left_centre = points[RIGHT_IRIS], points[LEFT_IRIS]
    interocular = float(np.linalg.norm(left_centre - right_centre)) or math.nan
    axis = points[LEFT_EYE_EAR[0]] - points[RIGHT_EYE_EAR[0]]
    axis = axis / (np.linalg.norm(axis) or 1.0)
    normal = np.array([-axis[1], axis[0]])
    gaze = []
    for corners, iris in (((RIGHT_EYE_EAR[0], RIGHT_EYE_EAR[3]), right_centre), ((LEFT_EYE_EAR[0], LEFT_EYE_EAR[3]), left_centre)):
        a, b = points[corners[0]], points[corners[1]]
        half = float(np.linalg.norm(a - b)) / 2 or math.nan
        offset = iris - (a + b) / 2
        gaze.append((float(offset @ axis) / half, float(offset @ normal) / half))
    return Expression(
        eye_right=_ear(points, RIGHT_EYE_EAR),
        eye_left=_ear(points, LEFT_EYE_EAR),
        mouth_open=float(np.linalg.norm(points[MOUTH_INNER[0]] - points[MOUTH_INNER[1]])) / interocular,
        mouth_width=float(np.linalg.norm(points[MOUTH_CORNERS[0]] - points[MOUTH_CORNERS[1]])) / interocular,
        gaze_x=float(np.mean([g[0] for g in gaze])),
        gaze_y=float(np.mean([g[1] for g in gaze])),
    )


def series(faces: Sequence[Expression | None], feature: str) -> np.ndarray:
    """One feature over a sequence of faces (float64; NaN where no face was found)."""
    if feature == "eyes":
        return np.array([math.nan if f is None else f.eyes for f in faces])
    return np.array([math.nan if f is None else getattr(f, feature) for f in faces])


def eye_openness(faces: Sequence[Expression | None]) -> np.ndarray:
    """Per face, the more closed eye's EAR as a fraction of that eye's open level over the sequence (its
    OPEN_PERCENTILE-th percentile): float64, about 1 open, under ``CLOSED_FRACTION`` closed, NaN where no
    face was found (or an eye never was)."""
    levels = []
    for feature in ("eye_right", "eye_left"):
        values = series(faces, feature)
        finite = values[np.isfinite(values)]
        level = float(np.percentile(finite, OPEN_PERCENTILE)) if finite.size else math.nan
        levels.append(values / level if level > 0 else np.full(len(values), math.nan))
    with np.errstate(invalid="ignore"):
        return np.fmin(levels[0], levels[1])


def closed_eyes(openness: np.ndarray, fraction: float = CLOSED_FRACTION) -> np.ndarray:
    """Frames with the eyes closed: ``eye_openness`` below ``fraction``, as a bool array; NaN (no face)
    counts as open."""
    return np.nan_to_num(openness, nan=np.inf) < fraction


def blinks(openness: np.ndarray, min_frames: int = BLINK_FRAMES) -> list[tuple[int, int]]:
    """(first, last) closed frame of each blink: eyes closed (``closed_eyes`` of an ``eye_openness``
    series) in at least ``min_frames`` frames, where closed runs that the eyes do not reopen between (past
    REOPEN_FRACTION of the open level) are one blink, not several. Frame indices into ``openness``."""
    closed, shut = closed_eyes(openness), closed_eyes(openness, REOPEN_FRACTION)
    runs: list[tuple[int, int]] = []
    start = None
    for i, down in enumerate([*closed, False]):
        if down and start is None:
            start = i
        elif not down and start is not None:
            if runs and shut[runs[-1][1] : start].all():  # never reopened since the last run: the same blink
                start = runs.pop()[0]
            runs.append((start, i - 1))
            start = None
    return [(first, last) for first, last in runs if int(closed[first : last + 1].sum()) >= min_frames]


@dataclass(frozen=True)
class Fidelity:
    """How a swap follows its source's expression over a clip (or a set of faces)."""

    faces: int  # frames (faces) where both meshes were found
    correlation: dict[str, float]  # Pearson r per feature (NaN when either side does not vary)
    mean_abs_error: dict[str, float]  # per feature, in its own units
    source_blinks: int
    reproduced_blinks: int

    @property
    def blink_share(self) -> float:
        return self.reproduced_blinks / self.source_blinks if self.source_blinks else math.nan

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "blink_share": self.blink_share}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def fidelity(source: Sequence[Expression | None], swap: Sequence[Expression | None], min_frames: int = BLINK_FRAMES) -> Fidelity:
    """Compare the expressions of a source and its swap, frame by frame (the same length; None where a
    mesh was not found). For separate faces rather than a clip, ``min_frames=1`` counts each closed-eye
    source face as a "blink" to reproduce."""
    if len(source) != len(swap):
        raise ValueError(f"source and swap differ in length: {len(source)} and {len(swap)}")
    both = np.array([s is not None and w is not None for s, w in zip(source, swap, strict=True)])
    correlation, error = {}, {}
    for feature in FEATURES:
        a, b = series(source, feature)[both], series(swap, feature)[both]
        correlation[feature] = _pearson(a, b)
        error[feature] = float(np.abs(a - b).mean()) if len(a) else math.nan
    source_blinks = blinks(eye_openness(source), min_frames)
    swap_closed = closed_eyes(eye_openness(swap))
    reproduced = sum(1 for first, last in source_blinks if swap_closed[max(0, first - 1) : last + 2].any())
    return Fidelity(int(both.sum()), correlation, error, len(source_blinks), reproduced)
