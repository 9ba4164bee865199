"""The content gate's decision, as a pure function of what the detector saw.

Kept apart from the model so that it can be tested exactly, on recorded detections, and read in one
place: which classes count, how sure the detector must be, and how many frames it takes.
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
MAX_FLAGGED_SHARE = 0.05  # a stray false detection in a long video is tolerated; a pattern is not

FrameDetections = Mapping[str, float]  # class name -> the highest score of that class in the frame


@dataclass(frozen=True)
class GateDecision:
    refused: bool
    sampled_frames: int
    flagged_frames: int
    classes: tuple[str, ...]  # the explicit classes seen in flagged frames, most frequent first

    @property
    def flagged_share(self) -> float:
        return self.flagged_frames / self.sampled_frames if self.sampled_frames else 0.0


def flagged(frame: FrameDetections, threshold: float = SCORE_THRESHOLD) -> list[str]:
    return sorted(name for name, score in frame.items() if name in EXPLICIT_CLASSES and score >= threshold)


def decide(
    frames: Sequence[FrameDetections],
    threshold: float = SCORE_THRESHOLD,
    max_share: float = MAX_FLAGGED_SHARE,
) -> GateDecision:
    """Refuse when more than `max_share` of the sampled frames show an explicit class at or above
    `threshold`. One image is one frame, so a single flagged image is refused."""
    hits = [flagged(frame, threshold) for frame in frames]
    flagged_count = sum(1 for h in hits if h)
    counts: dict[str, int] = {}
    for names in hits:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    classes = tuple(sorted(counts, key=lambda n: (-counts[n], n)))
    refused = bool(frames) and flagged_count / len(frames) > max_share
    return GateDecision(refused, len(frames), flagged_count, classes)
