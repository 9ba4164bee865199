"""Which of a frame's faces extract keeps: every face gets its track and identity (``faces.tracks``),
and with ``--identity`` / ``--not-identity`` only the faces of (or not of) the reference person stay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.faces.align import transform_points
from facetwin.faces.analyse import FoundFace
from facetwin.faces.identity import FaceEmbedder, IdentityMatch
from facetwin.faces.tracks import FaceIdentity, IdentityTracker

WIDE_SEARCH = 16  # faces looked at per frame when some will be left out by identity


@dataclass(frozen=True)
class PickedFace:
    face: FoundFace
    identity: FaceIdentity


class FacePicker:
    """Tracks and identities of the faces of one source's frames at a time, and the choice by identity.

    ``keep``: only faces matching it are kept; ``leave``: faces matching it are left out. Track numbers
    start at ``first_track`` and go on across sources (``start_source``)."""

    def __init__(self, embedder: FaceEmbedder, keep: IdentityMatch | None = None, leave: IdentityMatch | None = None,
                 first_track: int = 1) -> None:  # fmt: skip
        self.embedder, self.keep, self.leave = embedder, keep, leave
        self.tracker = IdentityTracker(first_track)
        self.left_out = 0  # faces left out by identity so far

    @property
    def filters(self) -> bool:
        return self.keep is not None or self.leave is not None

    def number_tracks_from(self, first: int) -> None:
        """New tracks get numbers from ``first`` on (a face set's next free one)."""
        self.tracker.next_track = first

    def start_source(self) -> None:
        """A new source: no track continues into it."""
        self.tracker = IdentityTracker(self.tracker.next_track)

    def pick(self, seconds: float, faces: list[FoundFace]) -> list[PickedFace]:
        """The faces of the next frame (at ``seconds``) that are kept, each with its identity, in order."""

        def embed(indices: list[int]) -> np.ndarray:
            chosen = [faces[i] for i in indices]
            points = [transform_points(f.landmarks, f.aligned.frame_to_crop) for f in chosen]
            return self.embedder.embed_crops([f.aligned.crop for f in chosen], points)

        identities = self.tracker.update(seconds, [f.detection.box for f in faces], embed)
        picked = [PickedFace(face, identity) for face, identity in zip(faces, identities, strict=True)
                  if self._wanted(identity)]  # fmt: skip
        self.left_out += len(faces) - len(picked)
        return picked

    def _wanted(self, identity: FaceIdentity) -> bool:
        embedding = identity.embedding[None]
        if self.keep is not None and not self.keep.matches(embedding)[0]:
            return False
        return not (self.leave is not None and self.leave.matches(embedding)[0])
