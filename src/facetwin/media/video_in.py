"""Reading video: every frame upright, in RGB that means what the file says, on its own timestamp, and
every frame that can be decoded even when some cannot.

- Upright: the display matrix (phones' portrait video) is applied to the pixels.
- Colour: Y'CbCr is converted with the matrix and range the file declares (the players' rule where it
  declares none, ``facetwin.media.colour``); HDR (PQ, HLG) is converted to SDR BT.709
  (``facetwin.media.tonemap``); more than 8 bits become 8. ``VideoDescription.reading_notices`` says so.
- Alpha: pixel formats with alpha deliver it beside the RGB.
- Damage: packets are decoded one by one; one that fails is counted and skipped, and decoding goes on.
  When the video is done, ``DamagedMedia`` is raised (after every good frame was yielded) naming how
  many frames were lost and where. A file cut short is damage at its end.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation

from facetwin.errors import FacetwinError
from facetwin.media.colour import HLG, PQ, SDR_BT709, Colour, describe_tags
from facetwin.media.orientation import Orientation, from_display_matrix
from facetwin.media.tonemap import hdr_to_sdr

# swscale's accurate rounding and full chroma interpolation: colour bars round-trip within 1 level
# instead of 3 (bench/convert.py measures what it costs).
ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


TECHNICAL_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name",
                            "vendor_id", "duration", "compatible_brand"})


class MediaError(FacetwinError):
    """A file that cannot be read as media at all."""


@dataclass(frozen=True)
class Damage:
    """What could not be read: ``lost`` presentation times (seconds) of frames that could not be decoded,
    ``stopped`` the reason decoding ended early (a file cut short), ``promised`` the frame count the
    header promised when more than were found."""

    lost: tuple[float, ...] = ()
    delivered: int = 0
    stopped: str | None = None
    promised: int | None = None
    last_delivered: float = 0.0  # presentation time of the last frame delivered (s)

    @property
    def truncated(self) -> bool:
        """True when the file itself ends early (cut short, or fewer frames than its header promises)."""
        return self.stopped is not None or self.promised is not None

    @property
    def tail_lost(self) -> bool:
        """True when frames at the end are missing, so the output's other streams must end with its video."""
        return self.truncated or any(seconds > self.last_delivered for seconds in self.lost)

    def spans(self, limit: int = 3) -> str:
        """The lost times as ranges, e.g. '0.54-0.82 s, 1.20 s' (the first ``limit``, then how many more)."""
        groups: list[list[float]] = []
        for seconds in sorted(self.lost):
            if groups and seconds - groups[-1][-1] < 0.3:
                groups[-1].append(seconds)
            else:
                groups.append([seconds])
        text = [f"{g[0]:.2f}-{g[-1]:.2f} s" if len(g) > 1 else f"{g[0]:.2f} s" for g in groups[:limit]]
        if len(groups) > limit:
            text.append(f"and {len(groups) - limit} more places")
        return ", ".join(text)


class DamagedMedia(FacetwinError):
    """Some frames could not be decoded; every frame that could was delivered before this was raised."""

    def __init__(self, path: Path, damage: Damage) -> None:
        parts = []
        if damage.truncated:
            why = damage.stopped or f"the header promises {damage.promised} frames"
            parts.append(f"decoding stopped after {damage.delivered} frames ({why})")
        if damage.lost:
            parts.append(f"{len(damage.lost)} frames could not be decoded (at {damage.spans()}) and were skipped")
        super().__init__(f"{path}: " + "; ".join(parts) + f"; the {damage.delivered} frames read were kept")
        self.path, self.damage = path, damage
        self.frames_read = damage.delivered


TruncatedMedia = DamagedMedia  # the name for a file cut short, which is damage at its end


@dataclass(frozen=True)
class StreamInfo:
    """A stream of the file other than the video that is converted: its index, type ('audio',
    'subtitle', 'data', 'video' for further video streams and cover pictures), codec and language."""

    index: int
    kind: str
    codec: str
    language: str | None = None

    def describe(self) -> str:
        return f"{self.kind} stream {self.index} ({self.codec}{', ' + self.language if self.language else ''})"


@dataclass(frozen=True)
class VideoDescription:
    """A video file's first video stream as facetwin reads it.

    ``width`` x ``height`` is the upright (displayed) size in pixels; ``orientation`` how the stored
    pixels become upright; ``colour`` the file's colour description (guesses marked), ``delivered`` what
    the RGB frames facetwin reads mean (the same, or SDR BT.709 for HDR); ``bit_depth`` and ``chroma``
    ('4:2:0', '4:2:2', '4:4:4', '4:0:0') of the stored pixels; ``alpha`` whether frames carry alpha;
    ``rate`` the average frame rate (frames/s) and ``time_base`` the timestamps' unit (seconds);
    ``frame_count`` from the header (None when it has none); ``others`` the file's other streams."""

    path: Path
    codec: str
    width: int
    height: int
    orientation: Orientation
    angle: float
    colour: Colour
    delivered: Colour
    bit_depth: int
    chroma: str
    alpha: bool
    pix_fmt: str
    rate: Fraction | None
    time_base: Fraction
    frame_count: int | None
    stream_index: int
    others: tuple[StreamInfo, ...] = field(default=())
    metadata: tuple[str, ...] = field(default=())  # the container's descriptive tags (not its technical ones)

    @property
    def fps(self) -> float:
        return float(self.rate) if self.rate else 0.0

    def reading_notices(self) -> list[str]:
        """One line for each thing reading changes about the pictures (the HDR and bit-depth conversions)."""
        notes = []
        if self.colour.hdr:
            notes.append(f"{self.path}: {self.colour.hdr} input read as SDR BT.709 after tone mapping (BT.2408 reference white)")
        elif self.bit_depth > 8:
            notes.append(f"{self.path}: {self.bit_depth}-bit input read as 8-bit (facetwin works on 8-bit frames)")
        if self.angle % 90 > 1e-3:
            notes.append(f"{self.path}: display rotation {self.angle:.1f}° read as {self.orientation.describe()} (the nearest quarter turn)")
        return notes


def _chroma(pix_fmt: av.VideoFormat) -> str:
    if len(pix_fmt.components) <= 2 and not pix_fmt.is_rgb and not pix_fmt.has_palette:
        return "4:0:0"
    if pix_fmt.is_rgb or pix_fmt.has_palette:
        return "4:4:4"
    across, down = pix_fmt.chroma_width(8), pix_fmt.chroma_height(8)
    return {(8, 8): "4:4:4", (4, 8): "4:2:2", (4, 4): "4:2:0"}.get((across, down), "4:2:0")


def _has_alpha(pix_fmt: av.VideoFormat) -> bool:
    count = len(pix_fmt.components)
    return (count == 4 and not pix_fmt.name.startswith(("rgb0", "bgr0", "0rgb", "0bgr"))) or (count == 2 and not pix_fmt.has_palette)


def _display_matrix(first: av.VideoFrame) -> tuple[int, ...] | None:
    """The display matrix FFmpeg attaches to decoded frames (from the container's track header)."""
    side: Any = first.side_data.get(SideDataType.DISPLAYMATRIX)  # type: ignore[call-overload]
    if side is None:
        return None
    return struct.unpack("<9i", bytes(memoryview(side))[:36])


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if "'" in text else text.strip()


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: not a readable video ({_reason(exc)})") from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path}: has no video stream")
    return container


def _first_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame | None:
    """The first frame that decodes (its side data carries the display matrix), or None."""
    try:
        for packet in container.demux(stream):
            try:
                for frame in stream.decode(packet):
                    return frame
            except av.FFmpegError:
                continue
    except av.FFmpegError:
        return None
    return None


def describe_video(path: Path) -> VideoDescription:
    """Describe a video file (decodes its first frame for the display matrix). Raises MediaError for a
    file that is not a readable video."""
    with _open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        pix_fmt = av.VideoFormat(context.pix_fmt) if context.pix_fmt else av.VideoFormat("yuv420p")
        first = _first_frame(container, stream)
        if first is None:
            raise MediaError(f"{path}: no frame could be decoded")
        orientation, angle = from_display_matrix(_display_matrix(first))
        coded_w, coded_h = first.width, first.height
        width, height = (coded_h, coded_w) if orientation.swaps_sides else (coded_w, coded_h)
        # a frame carries the bitstream's tags, or the container's where the bitstream has none
        colour = describe_tags(first.color_primaries, first.color_trc, first.colorspace, first.color_range,
                               coded_w, coded_h, first.format.name)
        others = tuple(
            StreamInfo(s.index, "video" if s.type == "video" else s.type, s.codec_context.name if s.codec_context else "unknown",
                       s.metadata.get("language") if s.metadata.get("language") not in (None, "und") else None)
            for s in container.streams if s.index != stream.index
        )  # fmt: skip
        metadata = tuple(sorted(key for key in container.metadata if key.lower() not in TECHNICAL_TAGS))
        return VideoDescription(
            path=path, codec=context.name, width=width, height=height, orientation=orientation, angle=angle,
            colour=colour, delivered=SDR_BT709 if colour.hdr else colour,
            bit_depth=max(c.bits for c in pix_fmt.components), chroma=_chroma(first.format),
            alpha=_has_alpha(first.format), pix_fmt=first.format.name, rate=stream.average_rate or stream.guessed_rate,
            time_base=stream.time_base or Fraction(1, 25), frame_count=stream.frames or None,
            stream_index=stream.index, others=others, metadata=metadata,
        )  # fmt: skip


@dataclass(frozen=True)
class Frame:
    """A decoded frame: ``index`` its place in presentation order in the file (frames lost to damage
    keep theirs, so indices may skip), ``seconds`` its presentation time, ``rgb`` (H, W, 3) uint8
    upright pixels, ``pts`` the stream's own timestamp (in ``VideoDescription.time_base``), ``alpha``
    (H, W) uint8 upright opacity (255 opaque) for sources that have it, else None."""

    index: int
    seconds: float
    rgb: np.ndarray = field(repr=False)
    pts: int | None = None
    alpha: np.ndarray | None = field(default=None, repr=False)


class DecodedToRGB:
    """Decoded frame to upright 8-bit RGB (and alpha) as ``VideoDescription`` says it must be read.

    ``accurate``: swscale's accurate rounding and full chroma interpolation (colour bars within 1 level);
    False keeps the declared matrix and range but takes swscale's fast path (within ~3 levels, 7x faster
    at 400x300: 0.11 against 0.79 ms a frame), for readers that only look, like the content gate."""

    def __init__(self, description: VideoDescription, accurate: bool = True) -> None:
        self.interpolation = ACCURATE if accurate else None
        self.orientation = description.orientation
        self.colour = description.colour
        self.hdr = {PQ: "pq", HLG: "hlg"}.get(description.colour.transfer)
        self.alpha = description.alpha

    def __call__(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray | None]:
        options: dict[str, Any] = {"src_colorspace": self.colour.swscale_matrix, "src_color_range": self.colour.range_code,
                                   "interpolation": self.interpolation}  # fmt: skip
        alpha = None
        if self.hdr is not None:  # (swscale's full chroma interpolation garbles 16-bit RGB output: not used here)
            rgb = hdr_to_sdr(frame.to_ndarray(format="rgb48le", **{**options, "interpolation": None}), self.hdr)
        elif self.alpha:
            rgba = frame.to_ndarray(format="rgba", **options)
            rgb, alpha = np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        else:
            rgb = frame.to_ndarray(format="rgb24", **options)
        if not self.orientation.identity:
            rgb = self.orientation.upright(rgb)
            alpha = self.orientation.upright(alpha) if alpha is not None else None
        return rgb, alpha


def read_video(path: Path, every: int = 1, skip: frozenset[int] = frozenset(),
               description: VideoDescription | None = None, accurate: bool = True) -> Iterator[Frame]:
    """Yield every ``every``-th frame (by index) of a video upright, leaving out indices in ``skip``;
    ``accurate``: as in ``DecodedToRGB``.

    Raises MediaError when the file is not a readable video, and DamagedMedia after the last good frame
    when frames were lost (undecodable packets, a file cut short)."""
    if every < 1:
        raise ValueError("every must be at least 1")
    description = description or describe_video(path)
    convert = DecodedToRGB(description, accurate)
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base or Fraction(1, 25)
        seen: list[int] = []  # presentation timestamps of the packets demuxed so far, sorted
        delivered: set[int] = set()
        count = 0
        stopped: str | None = None

        last = -1
        latest = 0.0

        def emit(decoded: list[av.VideoFrame]) -> Iterator[Frame]:
            nonlocal count, last, latest
            for frame in decoded:
                if frame.pts is not None:  # its place among all packets: frames lost before it keep theirs
                    index = bisect.bisect_left(seen, frame.pts)
                    delivered.add(frame.pts)
                else:
                    index = count
                index = last = max(index, last + 1)  # never repeated, even where timestamps are
                count += 1
                seconds = float(frame.pts * time_base) if frame.pts is not None else index / (description.fps or 25)
                latest = max(latest, seconds)
                if index % every or index in skip:
                    continue
                rgb, alpha = convert(frame)
                yield Frame(index, seconds, rgb, frame.pts, alpha)

        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container itself breaks off: a file cut short
                stopped = _reason(exc)
                break
            if packet.size and packet.pts is not None and not packet.is_discard:
                bisect.insort(seen, packet.pts)
            try:
                decoded = list(stream.decode(packet))
            except av.FFmpegError:
                continue  # counted below: its timestamp never comes out as a frame
            yield from emit(decoded)
        try:
            yield from emit(list(stream.decode(None)))
        except av.FFmpegError:
            pass
        if count == 0:
            raise MediaError(f"{path}: no frame could be decoded")
        lost = tuple(float(pts * time_base) for pts in seen if pts not in delivered)
        if count >= len(seen):  # as many frames as packets: timestamps that changed in decoding, not losses
            lost = ()
        promised = description.frame_count if description.frame_count and count < description.frame_count * 0.98 else None
        if promised is not None and len(seen) >= promised:
            promised = None  # every promised packet arrived: what is missing is counted in ``lost``
        if lost or stopped or promised:
            raise DamagedMedia(path, Damage(lost, count, stopped, promised, latest))
