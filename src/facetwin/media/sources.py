"""Which files are media, and reading frames from any of them behind one iterator.

Every stage (extract, convert, the safety gate, verify, evaluate) walks media the same way, so the rules
live here once: which files count as media, how a folder expands, and how a frame is read (an image is
one upright frame with its alpha; a video is read by ``facetwin.media.video_in``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import cv2

from facetwin.media.images import read_picture
from facetwin.media.video_in import Frame, describe_video, read_video

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

MediaKind = Literal["image", "video"]


@dataclass(frozen=True)
class MediaSource:
    """One input file and how to read it."""

    path: Path
    kind: MediaKind


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


@dataclass(frozen=True)
class VideoInfo:
    """A video's frame count from its header (None without one), frame rate (frames/s) and upright size."""

    frame_count: int | None
    fps: float
    width: int
    height: int


def video_info(path: Path) -> VideoInfo:
    """Raises MediaError for a file that is not a readable video."""
    description = describe_video(path)
    return VideoInfo(description.frame_count, description.fps, description.width, description.height)


def frame_count(source: MediaSource) -> int | None:
    return 1 if source.kind == "image" else video_info(source.path).frame_count


def read_frames(source: MediaSource, every: int = 1, skip: frozenset[int] = frozenset(),
                accurate: bool = True) -> Iterator[Frame]:
    """Yield every ``every``-th frame of a source upright, leaving out indices in ``skip`` (already done);
    ``accurate``: a video's colour conversion, as in ``DecodedToRGB``.

    Raises MediaError for a file that cannot be read; a video that loses frames raises DamagedMedia
    after every frame that decodes was yielded, so that the caller keeps what it had and reports the rest.
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    if source.kind == "image":
        if 0 not in skip:
            picture = read_picture(source.path)
            yield Frame(0, 0.0, picture.rgb, None, picture.alpha)
        return
    yield from read_video(source.path, every, skip, accurate=accurate)
