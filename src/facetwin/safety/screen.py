"""Which frames of a video the detector must see for the time rule to decide as if it had seen them all.

Checking every frame costs the detector's 12.8 ms a frame, about 40 % of convert. The rule in
``rule.py`` refuses on MIN_FLAGGED flagged frames within WINDOW_S seconds, so it does not need every
frame, only every frame *near* explicit material. The screen therefore checks:

- one frame at least every CHECK_GAP_S seconds (the gap is well under WINDOW_S, so every window of the
  rule holds several scheduled checks), and the first frame;
- every frame the caller marks as a scene cut (a spliced-in segment starts with one, so even a segment
  shorter than the gap has its first frame checked);
- every frame within WINDOW_S of a checked frame that shows an explicit class at SUSPICION_SCORE or
  more (below the rule's 0.5): the frames before it (kept, unchecked, for WINDOW_S) and after it.

Why that loses nothing: take any window [a, a + WINDOW_S] in which the full check (every frame) finds
MIN_FLAGGED flagged frames. The window holds scheduled checks (at most CHECK_GAP_S apart). If any of them
scores SUSPICION_SCORE or more, every frame within WINDOW_S of it is checked, which covers the whole
window, so the screen sees the same flagged frames and refuses too. The screen can miss a refusal only
if the detector flags frames of that window while scoring every scheduled check in it below
SUSPICION_SCORE; ``tests/test_safety.py`` and ``bench/gate.py`` run the screen and the full check on the
same recorded sequences and find no sequence that one refuses and the other passes.

The logic is pure: pixels go in as an opaque value and come back to the ``detect`` function the screen
is built with, so it runs the same on recorded detections as on frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from facetwin.safety import rule
from facetwin.safety.rule import WINDOW_S, CheckedFrame, FrameDetections

# The most time between two scheduled checks (plus up to one frame): every 8th frame at 25 frames/s, an
# eighth of the detector's cost (bench/gate.py: 12.5 % of the frames of the demo clips checked, up to
# 37 % of a clip whose stray scores call for closer looks), and still 6 scheduled checks in every
# window of the rule.
CHECK_GAP_S = 0.3
SUSPICION_SCORE = 0.2  # NudeNet's own reporting floor (detector.MIN_SCORE): any explicit box it reports

Pixels = TypeVar("Pixels")


def suspicious(scores: FrameDetections, level: float = SUSPICION_SCORE) -> bool:
    return any(score >= level for name, score in scores.items() if name in rule.EXPLICIT_CLASSES)


@dataclass(frozen=True)
class _Unchecked(Generic[Pixels]):
    index: int
    seconds: float
    pixels: Pixels


class Screen(Generic[Pixels]):
    """Feed it every frame of a file in order; it calls ``detect`` on the frames that need checking and
    keeps what the detector saw in ``checked`` (for ``rule.decide``).

    ``gap_s``, ``reach_s`` and ``suspicion`` default to CHECK_GAP_S, WINDOW_S and SUSPICION_SCORE; a gap
    of 0 checks every frame (the full check)."""

    def __init__(
        self,
        detect: Callable[[Pixels], FrameDetections],
        gap_s: float = CHECK_GAP_S,
        reach_s: float = WINDOW_S,
        suspicion: float = SUSPICION_SCORE,
    ) -> None:
        self.detect, self.gap_s, self.reach_s, self.suspicion = detect, gap_s, reach_s, suspicion
        self.checked: list[CheckedFrame] = []
        self.backfilled = 0  # frames checked because a later frame was suspicious
        self._backlog: deque[_Unchecked[Pixels]] = deque()
        self._last_scheduled = float("-inf")
        self._dense_until = float("-inf")

    def feed(self, index: int, seconds: float, pixels: Pixels, cut: bool = False) -> None:
        """One frame, in file order: checked now, or kept unchecked for WINDOW_S in case it is needed."""
        while self._backlog and self._backlog[0].seconds < seconds - self.reach_s:
            self._backlog.popleft()
        if cut or seconds - self._last_scheduled >= self.gap_s - 1e-6:
            self._last_scheduled = seconds
            self._check(index, seconds, pixels)
        elif seconds <= self._dense_until:
            self._check(index, seconds, pixels)
        else:
            self._backlog.append(_Unchecked(index, seconds, pixels))

    def _check(self, index: int, seconds: float, pixels: Pixels) -> None:
        scores = self.detect(pixels)
        self.checked.append(CheckedFrame(index, seconds, scores))
        if not suspicious(scores, self.suspicion):
            return
        self._dense_until = max(self._dense_until, seconds + self.reach_s)
        earlier = [frame for frame in self._backlog if frame.seconds >= seconds - self.reach_s]
        self._backlog.clear()
        self.backfilled += len(earlier)
        for frame in earlier:
            self.checked.append(CheckedFrame(frame.index, frame.seconds, self.detect(frame.pixels)))
