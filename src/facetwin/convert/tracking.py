"""Which faces convert swaps, frame after frame: tracks, a One-Euro filter per track, missed frames filled.

Every face of a frame is followed along its track (``faces.tracks.IdentityTracker``: by position, and
by identity where position is ambiguous). A track is swapped when its identity matches the person
(``faces.identity.IdentityMatch``: the model's source person by default, ``--identity REF``, or everyone
with ``--all-faces``); the landmarks are smoothed by the track's own One-Euro filter, so two faces whose
sizes swap order keep their own motion (a filter per "largest face" slot blended them into garbage).
A track found again within ``MAX_GAP`` frames of losing it is given the frames in between, interpolated
(``faces.tracks.GapFiller``), so the original face does not flash for a frame or three; frames leave
``FaceFollower`` ``MAX_GAP`` frames after they came in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from facetwin.arrays import Landmarks, RGBImage
from facetwin.convert.smooth import OneEuroFilter
from facetwin.faces.detect import Detection
from facetwin.faces.identity import FaceEmbedder, IdentityMatch
from facetwin.faces.tracks import GapFiller, IdentityTracker, TrackedFace

MAX_GAP = 5  # frames (0.2 s at 25 fps): a track missed for up to this many frames is filled in
Item = TypeVar("Item")


@dataclass(frozen=True)
class FollowedFace:
    """A face to swap: its track, its smoothed mesh (478 x 3 float32, frame pixels: where the swap is
    aligned and pasted), the mesh as measured in this frame before smoothing (the same array when
    smoothing is off; interpolated where the frame missed the face), and whether it was filled in from
    the frames around. Expression restore reads ``measured``: the One-Euro filter that steadies the
    alignment lags a frame behind and damps a two-frame blink (franck.mp4's blinks at frames 165 and 882:
    the more closed eye at 0.16 of its open level as measured, 0.38 and 0.39 at best smoothed, a frame
    late)."""

    track: int
    landmarks: Landmarks = field(repr=False)
    filled: bool
    measured: Landmarks = field(repr=False)


@dataclass
class FollowCounts:
    tracks: set[int] = field(default_factory=set)  # tracks swapped
    others: set[int] = field(default_factory=set)  # tracks of other people, left as they are
    filled: int = 0  # faces filled in where the detector missed them


class FaceFollower(Generic[Item]):
    """Follows the faces of one stream of frames (``Item``: whatever the caller pairs with a frame).

    ``choice`` None swaps every face; ``max_faces`` caps the swapped faces per frame (largest first)."""

    def __init__(self, embedder: FaceEmbedder, choice: IdentityMatch | None, smooth: bool = True,
                 max_faces: int = 8, max_gap: int = MAX_GAP) -> None:  # fmt: skip
        self.embedder, self.choice, self.smooth, self.max_faces = embedder, choice, smooth, max_faces
        self.tracker = IdentityTracker(keep_frames=max_gap + 1)
        self.filler: GapFiller[tuple[Item, float]] = GapFiller(max_gap)
        self.filters: dict[int, OneEuroFilter] = {}
        self.counts = FollowCounts()

    def push(self, item: Item, seconds: float, rgb: RGBImage,
             found: list[tuple[Detection, Landmarks]]) -> list[tuple[Item, list[FollowedFace]]]:  # fmt: skip
        """The next frame (at ``seconds``, its pixels and the faces found in it); returns the frames that are
        done, oldest first, each with the faces to swap in it."""
        meshes = [points for _, points in found]
        identities = self.tracker.update(
            seconds, [d.box for d, _ in found], lambda indices: self.embedder.embed_in_frame(rgb, [meshes[i] for i in indices]))
        faces = [TrackedFace(who, points, detection.box) for (detection, points), who in zip(found, identities, strict=True)]
        return [self._decide(entry, faces) for entry, faces in self.filler.push((item, seconds), faces)]

    def finish(self) -> list[tuple[Item, list[FollowedFace]]]:
        """Every frame still held: the stream ended."""
        done = [self._decide(entry, faces) for entry, faces in self.filler.finish()]
        self.counts.filled = self.filler.filled
        return done

    def _decide(self, entry: tuple[Item, float], faces: list[TrackedFace]) -> tuple[Item, list[FollowedFace]]:
        item, seconds = entry
        self.counts.filled = self.filler.filled
        if self.choice is not None and faces:
            wanted = self.choice.matches(np.stack([f.identity.track_mean for f in faces]))
            self.counts.others.update(f.track for f, w in zip(faces, wanted, strict=True) if not w)
            faces = [f for f, w in zip(faces, wanted, strict=True) if w]
        faces = sorted(faces, key=lambda f: max(f.box[2], f.box[3]), reverse=True)[: self.max_faces]
        followed = []
        for face in faces:
            self.counts.tracks.add(face.track)
            points = face.landmarks
            if self.smooth:
                points = self.filters.setdefault(face.track, OneEuroFilter())(points, seconds).astype(np.float32)
            followed.append(FollowedFace(face.track, points, face.filled, face.landmarks))
        live = {f.track for f in faces}
        self.filters = {t: f for t, f in self.filters.items() if t in live or t in {tr.id for tr in self.tracker.tracks}}
        return item, followed
