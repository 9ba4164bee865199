"""The content gate: every file extract or convert works on is screened, and explicit material refused.

What is screened: an image whole; a video frame by frame in order, through ``screen.Screen`` (a frame at
least every CHECK_GAP_S seconds, every scene cut, and every frame within WINDOW_S of anything the
detector finds suspicious), decided by ``rule.decide`` (MIN_FLAGGED flagged frames within WINDOW_S).

- extract screens the frames it will take faces from before it stores anything (``check``), so
  nothing of a refused file enters a face set, not even from its clean part;
- convert screens every frame of a video as it converts it, on a background thread (``screen``), and
  stops at the first refusing cluster; the output is only signed into place after the verdict, so a
  refused file leaves nothing behind. An image is checked before any work.

There is no switch to turn the gate off: refusing sexual deepfakes is part of what facetwin is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetwin.background import BackgroundWorker
from facetwin.errors import FacetwinError
from facetwin.media import Frame, MediaSource, TruncatedMedia, read_frames, video_info
from facetwin.safety.detector import NudityDetector
from facetwin.safety.rule import GateDecision, decide, flagged
from facetwin.safety.screen import Screen

# A scene cut: the mean absolute luma change (0-255) of a 32x32 thumbnail from one frame to the next.
# bench/gate.py: motion in the clean videos changes it by 8.6 at most, a cut between two of them by more.
CUT_LEVEL = 15.0
_THUMB = 32


class ContentRefused(FacetwinError):
    """A file the gate refused; the message names it and says why."""

    def __init__(self, path: Path, decision: GateDecision) -> None:
        seen = ", ".join(name.lower().replace("_", " ") for name in decision.classes)
        where = ""
        if decision.checked_frames > 1 and decision.cluster is not None:
            start, end = decision.cluster
            where = f" in {decision.cluster_frames} frames between {_clock(start)} and {_clock(end)}"
        super().__init__(f"{path}: refused: facetwin does not process sexually explicit material ({seen} detected{where})")
        self.path, self.decision = path, decision


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


class FrameFeed:
    """Turns decoded frames into the screen's input: the detector's view of each frame (kept small, so
    a couple of seconds of them can wait to be checked), its time, and whether it starts a new shot."""

    def __init__(self, detector: NudityDetector, fps: float) -> None:
        self.screen: Screen[np.ndarray] = Screen(lambda shrunk: detector.scores_shrunk([shrunk])[0])
        self.fps = fps or 25.0
        self._previous_thumb: np.ndarray | None = None
        self._previous_seconds = float("-inf")
        self._seen = 0

    def feed(self, frame: Frame) -> None:
        shrunk = NudityDetector.shrink(frame.rgb)
        thumb = cv2.resize(cv2.cvtColor(shrunk, cv2.COLOR_BGR2GRAY), (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
        cut = self._previous_thumb is not None and float(cv2.absdiff(thumb, self._previous_thumb).mean()) > CUT_LEVEL
        self._previous_thumb = thumb
        seconds = frame.seconds  # a stream without timestamps counts frames instead
        if seconds <= self._previous_seconds:
            seconds = self._previous_seconds + 1 / self.fps
        self._previous_seconds = seconds
        self.screen.feed(frame.index, seconds, shrunk, cut)

    def new_flags(self) -> bool:
        """Whether a flagged frame was checked since the last call (only then can the verdict change)."""
        fresh = self.screen.checked[self._seen :]
        self._seen = len(self.screen.checked)
        return any(flagged(frame.scores) for frame in fresh)

    def decision(self) -> GateDecision:
        return decide(self.screen.checked)


@dataclass
class ContentGate:
    """One detector, loaded on first use, shared by every file of a run."""

    _detector: NudityDetector | None = field(default=None, repr=False)
    _background_detector: NudityDetector | None = field(default=None, repr=False)

    @property
    def detector(self) -> NudityDetector:
        """For checks that hold up the run: all cores."""
        if self._detector is None:
            self._detector = NudityDetector()
        return self._detector

    @property
    def background_detector(self) -> NudityDetector:
        """For checks beside convert's other work: one thread (measured faster overall on 2 cores: 15.6
        against 13.8 frames/s for cap13)."""
        if self._background_detector is None:
            self._background_detector = NudityDetector(threads=1)
        return self._background_detector

    def check(self, source: MediaSource, every: int = 1) -> GateDecision:
        """Screen a file (of a video, every ``every``-th frame: the frames extract takes) and raise
        ContentRefused if it is explicit; return the decision otherwise. Unreadable files raise
        MediaError; of a truncated video, the frames that decode are screened."""
        fps = 0.0 if source.kind == "image" else video_info(source.path).fps / every
        feed = FrameFeed(self.detector, fps)
        try:
            for frame in read_frames(source, every=every, accurate=False):  # the detector needs no exact colour
                feed.feed(frame)
                if feed.new_flags() and feed.decision().refused:
                    break  # the first refusing cluster settles it
        except TruncatedMedia:  # what decodes is what gets processed; the caller reports the rest
            pass
        decision = feed.decision()
        if decision.refused:
            raise ContentRefused(source.path, decision)
        return decision

    def screen(self, source: MediaSource) -> FrameScreen:
        """For convert: an image is checked now; a video's frames are screened as they are handed in."""
        return FrameScreen(self, source)


class FrameScreen:
    """Convert's running gate. A video's frames are screened on a background thread (onnxruntime lets
    go of the GIL), overlapping the face models and the encoder; a refusal is raised at the next
    ``add`` after it is found, or by ``verdict``, which waits for the screen and must pass before the
    output may exist."""

    def __init__(self, gate: ContentGate, source: MediaSource) -> None:
        self.path = source.path
        self._checked_up_front: GateDecision | None = None
        self._worker: BackgroundWorker | None = None
        self._closed = False
        if source.kind == "image":
            self._checked_up_front = gate.check(source)
            return
        self._feed = FrameFeed(gate.background_detector, video_info(source.path).fps)
        self._worker = BackgroundWorker(self._screen, depth=8, name="facetwin-gate")

    def _screen(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            self._feed.feed(frame)
        if self._feed.new_flags():
            decision = self._feed.decision()
            if decision.refused:
                raise ContentRefused(self.path, decision)

    def add(self, frames: list[Frame]) -> None:
        """Every frame of the video, in order (batches of any size)."""
        if self._worker is not None and frames:
            self._worker.put(frames)

    def verdict(self) -> GateDecision:
        if self._worker is None:
            assert self._checked_up_front is not None
            return self._checked_up_front
        self._worker.drain()
        decision = self._feed.decision()
        if decision.refused:
            raise ContentRefused(self.path, decision)
        return decision

    def close(self) -> None:
        """Stop the background thread; a refusal it found was already raised by ``add`` or ``verdict``."""
        if self._worker is not None and not self._closed:
            self._closed = True
            try:
                self._worker.__exit__(None, None, None)
            except ContentRefused:
                pass
