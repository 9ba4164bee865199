"""``facetwin verify``: is this file labelled as made by facetwin, and by which model?

Two independent witnesses: the C2PA manifest (exact, signed, but lost on any re-encode or metadata
strip) and the watermark (survives re-encoding, resizing and JPEG, but carries only 40 bits). A file
is marked synthetic when either one says so; the report shows both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facetwin.errors import FacetwinError
from facetwin.media import (
    DamagedMedia,
    Frame,
    MediaError,
    MediaKind,
    MediaSource,
    collect_sources,
    read_frames,
    video_info,
)
from facetwin.provenance import watermark
from facetwin.provenance.credentials import CredentialReport, config_dir, mime_type, read_credentials

SAMPLED_FRAMES = 48  # spread evenly over a video; more adds little, the mark is on every swapped frame
MIN_AGREEING_FRAMES = 2  # a video counts as watermarked when at least this many frames agree


@dataclass
class WatermarkReport:
    sampled_frames: int
    marked_frames: int
    payload: str | None  # hex of the payload most frames agree on
    model_tag: int | None

    @property
    def fraction(self) -> float:
        return self.marked_frames / self.sampled_frames if self.sampled_frames else 0.0

    @property
    def found(self) -> bool:
        needed = 1 if self.sampled_frames == 1 else MIN_AGREEING_FRAMES
        return self.marked_frames >= needed


@dataclass
class Verdict:
    path: Path
    credentials: CredentialReport
    watermark: WatermarkReport | None
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        by_credential = self.credentials.valid and self.credentials.synthetic
        return by_credential or (self.watermark is not None and self.watermark.found)

    @property
    def summary(self) -> str:
        if self.error:
            return "error"
        return "synthetic (made by facetwin)" if self.synthetic else "not marked"

    def to_json(self) -> dict[str, Any]:
        data = {"file": str(self.path), "verdict": self.summary, "synthetic": self.synthetic, "error": self.error,
                "credentials": asdict(self.credentials), "watermark": None}
        if self.watermark is not None:
            data["watermark"] = {**asdict(self.watermark), "fraction": round(self.watermark.fraction, 4), "found": self.watermark.found}
        return data


def _sample_indices(count: int, wanted: int) -> set[int]:
    if count <= wanted:
        return set(range(count))
    return {round(i * (count - 1) / (wanted - 1)) for i in range(wanted)}


def read_watermark(path: Path, kind: MediaKind, sampled: int = SAMPLED_FRAMES) -> WatermarkReport:
    source = MediaSource(path, kind)
    readings = []
    if kind == "image":
        readings = [watermark.read(frame.rgb) for frame in read_frames(source)]
    else:
        count = video_info(path).frame_count
        frames: Iterator[Frame]
        if count:
            indices = _sample_indices(count, sampled)  # the others are decoded but not converted to RGB
            skip = frozenset(range(count)) - indices
            frames = (f for f in read_frames(source, skip=skip) if f.index in indices)
        else:  # no frame count in the header: read them all, keep every n-th
            frames = read_frames(source, every=5)
        try:
            readings = [watermark.read(frame.rgb) for frame in frames]
        except DamagedMedia:
            pass  # read what decodes: a damaged copy of a marked video should still verify
    payloads = Counter(r.payload for r in readings if r.payload is not None)
    if not payloads:
        return WatermarkReport(len(readings), 0, None, None)
    best, agreeing = payloads.most_common(1)[0]
    return WatermarkReport(len(readings), agreeing, best.hex, best.model_tag)


def local_trust_roots() -> list[bytes]:
    root = config_dir() / "signing" / "root.pem"
    return [root.read_bytes()] if root.exists() else []


def verify_file(path: Path, trust_roots: list[bytes] | None = None) -> Verdict:
    """Never raises for a bad file: the verdict carries the error instead."""
    if not path.is_file():
        return Verdict(path, CredentialReport(False), None, error=f"{path}: no such file")
    credentials = CredentialReport(False)
    if mime_type(path) is not None:
        credentials = read_credentials(path, trust_roots if trust_roots is not None else local_trust_roots())
    collected = collect_sources([path])
    if not collected.sources:
        return Verdict(path, credentials, None, error=collected.errors[0] if collected.errors else f"{path}: not media")
    try:
        marks = read_watermark(path, collected.sources[0].kind)
    except (MediaError, FacetwinError) as exc:
        return Verdict(path, credentials, None, error=str(exc))
    if marks.sampled_frames == 0:
        return Verdict(path, credentials, marks, error=f"{path}: no frame could be decoded")
    verdict = Verdict(path, credentials, marks)
    claimed = credentials.claim.get("watermark_payload")
    if claimed and marks.payload and claimed != marks.payload:
        verdict.problems.append(f"the watermark ({marks.payload}) differs from the one the credential names ({claimed})")
    return verdict


def exit_code(verdicts: list[Verdict]) -> int:
    """0: every file is marked synthetic; 1: some file is not; 2: some file could not be checked."""
    if any(v.error for v in verdicts):
        return 2
    return 0 if all(v.synthetic for v in verdicts) else 1

