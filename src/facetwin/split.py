"""The held-out split: which faces training never sees, decided so that it never moves.

Two faults of a random-frame split are avoided:

- **It moved.** Permuting positions meant that deleting one crop, or extracting more frames, moved
  faces between train and held-out, so a resumed model could be scored on faces it trained on. Here a
  face's side is a pure function of the seed and a stable key: its source's fingerprint (size and
  first/last MiB of the file, ``facetwin.faceset.fingerprint``) and its time in that source. Adding or
  deleting faces never moves any other face.
- **It leaked.** Neighbouring video frames are near-duplicates, so a held-out frame had a twin one
  frame away in training. Here whole time segments of a source are held out (``SEGMENT_SECONDS``),
  and training also leaves out every frame within ``GUARD_SECONDS`` of a held-out segment of the same
  source (the *guard* faces, used by neither side). Measured on the demo sets, the random-frame split
  made held-out L1 look lower than honest held-out faces do (bench/split.py prints both).

A segment is held out when the first 64 bits of SHA-256(seed, source, segment index), read as a
fraction of 2**64, fall below the held-out share. Images count as one segment each (their time is 0).
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

SEGMENT_SECONDS = 1.0  # held-out units: one second of a video (25 frames at 25 fps), or one image
GUARD_SECONDS = 1.0  # training keeps at least this far (in time) from any held-out frame of its source


class Role(enum.Enum):
    TRAIN = "train"
    HELD_OUT = "held_out"
    GUARD = "guard"  # too close in time to a held-out segment: used by neither side


@dataclass(frozen=True)
class FaceKey:
    """What a face's side depends on: its source file's fingerprint and its time in that source (s)."""

    source: str
    seconds: float

    @property
    def segment(self) -> int:
        return math.floor(self.seconds / SEGMENT_SECONDS)


def _draw(seed: int, source: str, segment: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, source, segment)."""
    digest = hashlib.sha256(f"{seed}|{source}|{segment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    """Positions of the keys passed to ``split``, by role."""

    train: list[int]
    held_out: list[int]
    guard: list[int]
    note: str | None = None  # set when the share drew no segment and the fallback picked one


def _roles(keys: Sequence[FaceKey], held: set[tuple[str, int]]) -> list[Role]:
    reach = math.ceil(GUARD_SECONDS / SEGMENT_SECONDS)
    roles = []
    for key in keys:
        segment = key.segment
        if (key.source, segment) in held:
            roles.append(Role.HELD_OUT)
            continue
        near = False
        for other in range(segment - reach, segment + reach + 1):
            if other == segment or (key.source, other) not in held:
                continue
            start, end = other * SEGMENT_SECONDS, (other + 1) * SEGMENT_SECONDS
            distance = start - key.seconds if key.seconds < start else key.seconds - end
            near = near or distance < GUARD_SECONDS
        roles.append(Role.GUARD if near else Role.TRAIN)
    return roles


def split(keys: Sequence[FaceKey], seed: int, share: float) -> Split:
    """Assign each face a role. ``share`` in (0, 1) is the expected held-out share of segments.

    When no segment is drawn (a small set) but there are at least two, the segment with the smallest
    draw is held out, and the returned ``note`` says so; that choice is stable while that segment's
    faces exist and no segment is drawn: a source added later that draws one takes its place (the
    fallback's segment goes back to training). With a single segment nothing can be held out honestly,
    and ``held_out`` is empty.
    """
    segments = {(k.source, k.segment) for k in keys}
    draws = {s: _draw(seed, *s) for s in segments}
    held = {s for s, value in draws.items() if value < share}
    note = None
    if not held and len(segments) >= 2:
        held = {min(draws, key=lambda s: draws[s])}
        note = f"a {share:.0%} share drew none of {len(segments)} one-second segments; the lowest draw is held out"
    roles = _roles(keys, held)
    pick = lambda role: [i for i, r in enumerate(roles) if r is role]  # noqa: E731
    return Split(pick(Role.TRAIN), pick(Role.HELD_OUT), pick(Role.GUARD), note)
