"""The content gate: before extract or convert works on a file, sample it and refuse explicit material.

Sampling: an image is its one frame; a video is read at about one frame a second. Convert also checks
every frame in which it found a face (see FrameScreen), because those are the frames it rewrites. There
is no switch to turn the gate off: refusing sexual deepfakes is part of what facetwin is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.background import BackgroundWorker
from facetwin.errors import FacetwinError
from facetwin.media import MediaSource, TruncatedMedia, read_frames, video_info
from facetwin.safety.detector import NudityDetector
from facetwin.safety.rule import FrameDetections, GateDecision, decide

BATCH = 8


class ContentRefused(FacetwinError):
    """A file the gate refused; the message names it and says why."""

    def __init__(self, path: Path, decision: GateDecision) -> None:
        seen = ", ".join(name.lower().replace("_", " ") for name in decision.classes)
        super().__init__(
            f"{path}: refused: facetwin does not process sexually explicit material "
            f"({seen} detected in {decision.flagged_frames} of {decision.sampled_frames} sampled frames)"
        )
        self.path, self.decision = path, decision


def _scores_in_batches(detector: NudityDetector, frames: Iterable[np.ndarray]) -> list[FrameDetections]:
    results: list[FrameDetections] = []
    batch: list[np.ndarray] = []
    for rgb in frames:
        batch.append(rgb)
        if len(batch) == BATCH:
            results += detector.scores(batch)
            batch = []
    return results + detector.scores(batch)


def _sampled_frames(source: MediaSource) -> Iterable[np.ndarray]:
    if source.kind == "image":
        yield from (frame.rgb for frame in read_frames(source))
        return
    every = max(1, round(video_info(source.path).fps or 1))
    try:
        yield from (frame.rgb for frame in read_frames(source, every=every))
    except TruncatedMedia:  # the frames that decode are what gets processed; the caller reports the rest
        return


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

    def sample(self, source: MediaSource) -> list[FrameDetections]:
        """The detections on the sampled frames of a file. Unreadable files raise MediaError."""
        return _scores_in_batches(self.detector, _sampled_frames(source))

    def check(self, source: MediaSource) -> GateDecision:
        """Sample a file and raise ContentRefused if it is explicit; return the decision otherwise."""
        decision = decide(self.sample(source))
        if decision.refused:
            raise ContentRefused(source.path, decision)
        return decision

    def screen(self, source: MediaSource) -> FrameScreen:
        """Check a file up front, then keep checking the frames convert rewrites (see FrameScreen)."""
        return FrameScreen(self, source.path, self.sample(source))


class FrameScreen:
    """Convert's running gate: the up-front samples plus every frame with a face, decided together.

    The frames are checked on a background thread (onnxruntime lets go of the GIL), overlapping the
    face models and the encoder; `verdict` waits for it and raises before the output may exist."""

    def __init__(self, gate: ContentGate, path: Path, detections: list[FrameDetections]) -> None:
        self.gate, self.path, self.detections = gate, path, detections
        self.verdict()  # an explicit file is refused before any work is done on it
        self._worker = BackgroundWorker(self._check, depth=8, name="facetwin-gate")

    def _check(self, frames: list[np.ndarray]) -> None:
        self.detections += _scores_in_batches(self.gate.background_detector, frames)

    def add(self, frames: list[np.ndarray]) -> None:
        if frames:
            self._worker.put(frames)

    def verdict(self) -> GateDecision:
        if hasattr(self, "_worker"):
            self._worker.drain()
        decision = decide(self.detections)
        if decision.refused:
            raise ContentRefused(self.path, decision)
        return decision

    def close(self) -> None:
        self._worker.__exit__(None, None, None)


