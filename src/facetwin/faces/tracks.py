"""Following faces from frame to frame of one source: tracks, their identity, and the frames they miss.

A *track* is one person's face in consecutive frames of one video. ``IdentityTracker`` links each
frame's faces to the tracks of the frames before by position (box overlap) and, where position alone is
ambiguous (two faces near one track, or one face near two), by identity. It gives every face its track
number and an identity embedding: computed on the first face of a track, again after
``refresh_seconds`` of video, and after twice as long each time the track's identity holds, up to
``MAX_REFRESH_SECONDS`` (and on every face whose link was ambiguous), copied to the faces in between.
A computed embedding that is farther than ``SAME_PERSON`` from its track's mean starts a new track
there: the box moved onto someone else. An embedding costs ~23 ms a face in the PyTorch port and ~110 ms
in dlib's own network on our CPUs (``faces.identity``), so embedding a few faces of a long steady track
instead of every face is what keeps extract and convert at their speed (``bench/identity.py`` measures
the cost and how far a copied embedding is from the exact one; ``bench/side_by_side.py`` extract's speed
against a tree without identities).

``GapFiller`` delays frames by ``max_gap`` and gives a track the frames it missed in between two frames
where it was found (a blink of the detector), its mesh interpolated linearly from the neighbours, so a
swap does not flash the original face for a frame or three.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from facetwin.arrays import Landmarks
from facetwin.faces.identity import SAME_PERSON

Box = tuple[float, float, float, float]  # x, y, w, h in frame pixels
LINK_IOU = 0.3  # a face continues a track when their boxes overlap at least this much
REFRESH_SECONDS = 1.0  # a track's identity is computed again after this much video, then after twice as
MAX_REFRESH_SECONDS = 8.0  # long each time it holds, up to this: 7 embeddings for cap13's 31 s, not 31
KEEP_FRAMES = 2  # frames a track may go unseen and still be continued by a face at its place
Item = TypeVar("Item")


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FaceIdentity:
    """A face's track number, its identity embedding (128 float32: computed on this face when ``exact``,
    else copied from its track) and its track's identity so far (the mean of the track's computed
    embeddings, what decisions about a whole track use)."""

    track: int
    embedding: np.ndarray = field(repr=False)
    exact: bool
    track_mean: np.ndarray = field(repr=False)


@dataclass
class _Track:
    id: int
    box: Box
    frame: int  # the last processed frame (its position in the stream) where it was seen
    seconds: float  # when its identity was last computed
    total: np.ndarray = field(repr=False)  # sum of the computed embeddings
    count: int

    @property
    def mean(self) -> np.ndarray:
        return (self.total / self.count).astype(np.float32)


class IdentityTracker:
    """Tracks and identities for the faces of one source's frames, handed in order.

    ``first_track`` is the number the first new track gets (a face set keeps them unique).
    """

    def __init__(self, first_track: int = 1, refresh_seconds: float = REFRESH_SECONDS, keep_frames: int = KEEP_FRAMES) -> None:
        self.next_track, self.refresh_seconds, self.keep_frames = first_track, refresh_seconds, keep_frames
        self.max_refresh_seconds = max(refresh_seconds, MAX_REFRESH_SECONDS)
        self.tracks: list[_Track] = []
        self.frame = -1
        self.computed = 0  # embeddings computed so far

    def update(self, seconds: float, boxes: Sequence[Box], embed: Callable[[list[int]], np.ndarray]) -> list[FaceIdentity]:
        """The faces of the next frame: their boxes (x, y, w, h) and ``embed(indices)``, which returns the
        embeddings (len(indices) x 128) of the faces at those indices; called only for the faces that need
        one. Returns each face's ``FaceIdentity`` in the order of ``boxes``."""
        self.frame += 1
        self.tracks = [t for t in self.tracks if self.frame - t.frame <= self.keep_frames]
        overlaps = np.array([[iou(box, t.box) for t in self.tracks] for box in boxes]).reshape(len(boxes), len(self.tracks))
        near = overlaps >= LINK_IOU
        ambiguous = [i for i in range(len(boxes)) if near[i].sum() > 1 or (near[:, near[i]].sum(axis=0) > 1).any()]
        fresh: dict[int, np.ndarray] = {}
        self._compute(ambiguous, embed, fresh)
        links = self._link(overlaps, near, fresh)
        wanted = [i for i in range(len(boxes)) if i not in fresh and (
            i not in links or seconds - self.tracks[links[i]].seconds >= self._interval(self.tracks[links[i]]))]  # fmt: skip
        self._compute(wanted, embed, fresh)
        result = []
        for i, box in enumerate(boxes):
            track = self.tracks[links[i]] if i in links else None
            if track is not None and i in fresh and np.linalg.norm(fresh[i] - track.mean) > SAME_PERSON:
                track = None  # someone else is where the track was: a new track starts here
            if track is None:
                track = _Track(self.next_track, box, self.frame, seconds, np.zeros(fresh[i].shape, np.float64), 0)
                self.next_track += 1
                self.tracks.append(track)
            if i in fresh:
                track.total, track.count, track.seconds = track.total + fresh[i], track.count + 1, seconds
            track.box, track.frame = box, self.frame
            mean = track.mean
            result.append(FaceIdentity(track.id, fresh[i] if i in fresh else mean, i in fresh, mean))
        return result

    def _interval(self, track: _Track) -> float:
        """Seconds of video after its last embedding that a track's identity is computed again: doubling
        with each embedding it has had, from ``refresh_seconds`` up to ``max_refresh_seconds``."""
        return min(self.refresh_seconds * 2 ** (track.count - 1), self.max_refresh_seconds)

    def _compute(self, indices: list[int], embed: Callable[[list[int]], np.ndarray], into: dict[int, np.ndarray]) -> None:
        if indices:
            into.update(zip(indices, embed(indices), strict=True))
            self.computed += len(indices)

    def _link(self, overlaps: np.ndarray, near: np.ndarray, fresh: dict[int, np.ndarray]) -> dict[int, int]:
        """Face index -> track index: greedy on box overlap, less the identity distance where both sides
        have an identity and the link is contested."""
        scores = []
        for i, j in zip(*np.nonzero(near), strict=True):
            score = float(overlaps[i, j])
            if i in fresh:
                distance = float(np.linalg.norm(fresh[i] - self.tracks[j].mean))
                if distance > SAME_PERSON:
                    continue
                score -= distance
            scores.append((score, int(i), int(j)))
        links: dict[int, int] = {}
        for _, i, j in sorted(scores, reverse=True):
            if i not in links and j not in links.values():
                links[i] = j
        return links


@dataclass(frozen=True)
class TrackedFace:
    """A face as convert and evaluate follow it: its track and identity, its mesh (478 x 3 float32, frame
    pixels) and box, and whether it was ``filled`` in from the frames around a missed detection."""

    identity: FaceIdentity
    landmarks: Landmarks = field(repr=False)
    box: Box
    filled: bool = False

    @property
    def track(self) -> int:
        return self.identity.track


@dataclass
class _Entry(Generic[Item]):
    item: Item
    faces: list[TrackedFace]


class GapFiller(Generic[Item]):
    """Hands frames on ``max_gap`` frames late, each with its faces and those filled in for tracks that
    missed it: a track found in frames ``i`` and ``j`` with ``1 <= j - i - 1 <= max_gap`` frames between
    gets a face in each of them, mesh and box interpolated linearly. ``Item`` is whatever the caller
    pairs with a frame's faces (the frame itself, its index)."""

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max_gap
        self._entries: deque[_Entry[Item]] = deque()
        self._first = 0  # stream position of the oldest entry held
        self._last_seen: dict[int, tuple[int, TrackedFace]] = {}  # track -> (stream position, face)
        self.filled = 0

    def push(self, item: Item, faces: list[TrackedFace]) -> list[tuple[Item, list[TrackedFace]]]:
        """Add the next frame; returns the frames that can no longer change, oldest first."""
        position = self._first + len(self._entries)
        self._entries.append(_Entry(item, list(faces)))
        for face in faces:
            seen = self._last_seen.get(face.track)
            if seen is not None and 1 <= position - seen[0] - 1 <= self.max_gap:
                self._fill(seen[0], seen[1], position, face)
            self._last_seen[face.track] = (position, face)
        ready = []
        while self._entries and self._first <= position - self.max_gap:
            ready.append(self._pop())
        self._last_seen = {t: s for t, s in self._last_seen.items() if position - s[0] <= self.max_gap + 1}
        return ready

    def finish(self) -> list[tuple[Item, list[TrackedFace]]]:
        """Every frame still held (the end of the stream: nothing more can be filled)."""
        ready = [self._pop() for _ in range(len(self._entries))]
        self._last_seen.clear()
        return ready

    def _pop(self) -> tuple[Item, list[TrackedFace]]:
        entry = self._entries.popleft()
        self._first += 1
        return entry.item, entry.faces

    def _fill(self, before: int, first: TrackedFace, after: int, last: TrackedFace) -> None:
        for position in range(before + 1, after):
            entry = self._entries[position - self._first]
            if any(f.track == last.track for f in entry.faces):
                continue
            t = (position - before) / (after - before)
            landmarks = ((1 - t) * first.landmarks + t * last.landmarks).astype(np.float32)
            box = tuple((1 - t) * a + t * b for a, b in zip(first.box, last.box, strict=True))
            identity = replace(last.identity, embedding=last.identity.track_mean, exact=False)
            entry.faces.append(TrackedFace(identity, landmarks, (box[0], box[1], box[2], box[3]), filled=True))
            self.filled += 1
