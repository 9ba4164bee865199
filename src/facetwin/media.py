"""Reading frames from images, folders of images and videos, behind one iterator.

Every stage (extract, convert, the safety gate) walks media the same way, so the rules live here once:
which files count as media, how a folder expands, how a truncated video is reported (the frames that
could be decoded are kept and the caller is told where decoding stopped).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from facetwin.errors import FacetwinError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

MediaKind = Literal["image", "video"]


class MediaError(FacetwinError):
    """A file that cannot be read as media at all."""


class TruncatedMedia(FacetwinError):
    """Decoding stopped early; the frames before ``frames_read`` were delivered."""

    def __init__(self, path: Path, frames_read: int, reason: str) -> None:
        super().__init__(f"{path}: decoding stopped after {frames_read} frames ({reason}); the frames read were kept")
        self.path = path
        self.frames_read = frames_read


@dataclass(frozen=True)
class MediaSource:
    """One input file and how to read it."""

    path: Path
    kind: MediaKind


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its index in the source, its presentation time (seconds, and the stream's own
    timestamp where there is one), RGB pixels."""

    index: int
    seconds: float
    rgb: np.ndarray = field(repr=False)
    pts: int | None = None


@dataclass
class CollectedInputs:
    sources: list[MediaSource]
    errors: list[str]


def kind_of(path: Path) -> MediaKind | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def collect_sources(inputs: Iterable[str | os.PathLike[str]]) -> CollectedInputs:
    """Expand files and folders into media sources; what is missing or not media becomes an error line.

    A folder contributes its images and videos (not recursively, sorted by name), as faceswap does;
    other files inside it are ignored silently because folders often hold side files.
    """
    collected = CollectedInputs(sources=[], errors=[])
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            collected.errors.append(f"{path}: no such file or directory")
        elif path.is_dir():
            members = [m for m in sorted(path.iterdir()) if m.is_file() and kind_of(m) is not None]
            if not members:
                collected.errors.append(f"{path}: folder holds no images or videos")
            collected.sources.extend(MediaSource(m, kind_of(m) or "image") for m in members)
        else:
            kind = kind_of(path) or _sniff_kind(path)
            if kind is None:
                collected.errors.append(f"{path}: not an image or video")
            else:
                collected.sources.append(MediaSource(path, kind))
    return collected


def _sniff_kind(path: Path) -> MediaKind | None:
    """Decide the kind of a file whose suffix says nothing, by trying the decoders."""
    if cv2.haveImageReader(str(path)):
        return "image"
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                return "video"
    except (av.FFmpegError, UnicodeDecodeError, OSError):
        return None
    return None


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8, raising MediaError with the reason when it cannot be."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, params: Sequence[int] = ()) -> Path:
    """Write an RGB image in the format its suffix names, via a temporary file and a rename, so a reader
    never sees half a file. Raises OSError when it cannot be written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(target.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    if not ok:
        raise OSError(f"{target}: cannot encode this image")
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(encoded.tobytes())
    os.replace(partial, target)
    return target


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int | None
    fps: float
    width: int
    height: int


def video_info(path: Path) -> VideoInfo:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 0
            return VideoInfo(stream.frames or None, float(rate), stream.codec_context.width, stream.codec_context.height)
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from exc


def frame_count(source: MediaSource) -> int | None:
    return 1 if source.kind == "image" else video_info(source.path).frame_count


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if "'" in text else text.strip()


def read_frames(source: MediaSource, every: int = 1, skip: frozenset[int] = frozenset()) -> Iterator[Frame]:
    """Yield every ``every``-th frame of a source, leaving out indices in ``skip`` (already done).

    A video that fails mid-way raises TruncatedMedia after the good frames were yielded, so that the
    caller keeps what it had and reports the rest.
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    if source.kind == "image":
        if 0 not in skip:
            yield Frame(0, 0.0, read_image(source.path))
        return
    try:
        container = av.open(str(source.path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{source.path}: not a readable video ({_reason(exc)})") from exc
    with container:
        if not container.streams.video:
            raise MediaError(f"{source.path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every or index in skip:
                    continue
                seconds = float(frame.time) if frame.time is not None else 0.0
                yield Frame(index, seconds, frame.to_ndarray(format="rgb24"), frame.pts)
        except av.FFmpegError as exc:
            raise TruncatedMedia(source.path, index + 1, _reason(exc)) from exc
        expected = stream.frames
        if index < 0:
            raise MediaError(f"{source.path}: no frame could be decoded")
        if expected and index + 1 < expected * 0.98:
            raise TruncatedMedia(source.path, index + 1, f"the header promises {expected} frames")
