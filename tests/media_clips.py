"""Test material made the way phones, cameras and editors write it, from the demo clips, with PyAV; and a
player: what a viewer sees of a file, decoded independently of facetwin.

``write_clip`` encodes RGB frames with a chosen codec, pixel format, display rotation, colour tags,
frame times, audio tracks and subtitles. ``player_view`` decodes the way a player does: the Y'CbCr
matrix and range the stream is tagged with (BT.709 for untagged HD, BT.601 below, limited range),
done here in numpy rather than by swscale, and the display rotation applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Kr, Kb of each H.273 matrix code point (ITU-T H.273 table 4)
MATRIX_K = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087), 9: (0.2627, 0.0593)}
SWSCALE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}
ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
              b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
              b"Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
              b"MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
              b"10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


def demo_frames(clip: Path, count: int, start: int = 0) -> list[np.ndarray]:
    """``count`` frames of a demo clip from frame ``start``, as (H, W, 3) uint8 RGB."""
    frames = []
    with av.open(str(clip)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def colour_bars(width: int, height: int) -> np.ndarray:
    """SMPTE-style 75 % bars (white, yellow, cyan, green, magenta, red, blue, near black), RGB uint8."""
    levels = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0), (0, 0, 191), (20, 20, 20)]
    bars = np.zeros((height, width, 3), np.uint8)
    for i, level in enumerate(levels):
        bars[:, i * width // 8 : (i + 1) * width // 8] = level
    return bars


def bar_centres(image: np.ndarray) -> np.ndarray:
    """(8, 3) mean colour of the middle of each bar (away from edges that chroma subsampling blurs)."""
    height, width = image.shape[:2]
    step = width // 8
    return np.array([image[height // 4 : 3 * height // 4, i * step + step // 4 : (i + 1) * step - step // 4].reshape(-1, 3).mean(0)
                     for i in range(8)])  # fmt: skip


@dataclass
class Track:
    """An audio track: a tone of ``hz`` in ``codec`` (``layout`` mono or stereo), ``seconds`` long."""

    hz: float
    codec: str = "aac"
    seconds: float = 3.0
    rate: int = 48000
    layout: str = "mono"
    language: str | None = None


@dataclass
class Clip:
    """How ``write_clip`` encodes: codec and pixel format, display rotation (degrees counter-clockwise,
    as PyAV's ``set_display_rotation``), colour tags (primaries, transfer, matrix, range; None leaves
    them unspecified), frame rate, explicit frame times in seconds (VFR), audio tracks, subtitles
    (text, start s, end s), codec options."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    rotation: int | None = None
    mirror: bool = False
    colour: tuple[int, int, int, int] | None = None
    rate: Fraction = Fraction(25)
    times: list[float] | None = None
    tracks: list[Track] = field(default_factory=list)
    subtitles: list[tuple[str, float, float]] = field(default_factory=list)
    subtitle_codec: str = "mov_text"
    options: dict[str, str] = field(default_factory=lambda: {"crf": "10"})
    input_format: str = "rgb24"
    container_options: dict[str, str] = field(default_factory=dict)
    matrix: tuple[int, int] | None = None  # (matrix, range) to encode with when ``colour`` leaves them untagged


def write_clip(path: Path, frames: list[np.ndarray], clip: Clip) -> Path:
    """Encode ``frames`` (stored pixels: RGB uint8, or uint16 for ``input_format='rgb48le'``) into ``path``."""
    time_base = Fraction(1, 90000) if clip.times is not None else 1 / clip.rate
    with av.open(str(path), "w", options=clip.container_options) as out:
        video = out.add_stream(clip.codec, rate=clip.rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = clip.pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.options = dict(clip.options)
        if clip.colour is not None:
            context = video.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = clip.colour
        if clip.rotation is not None or clip.mirror:
            video.set_display_rotation(clip.rotation or 0, hflip=clip.mirror)
        audio = []
        for track in clip.tracks:
            stream = out.add_stream(track.codec, rate=track.rate, layout=track.layout)
            if track.codec in ("vorbis", "opus", "flac"):
                stream.codec_context.options = {"strict": "experimental"}
            if track.language:
                stream.metadata["language"] = track.language
            audio.append((track, stream))
        subtitles = out.add_stream(clip.subtitle_codec) if clip.subtitles else None
        if subtitles is not None:
            subtitles.time_base = Fraction(1, 1000)
            subtitles.codec_context.subtitle_header = ASS_HEADER
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=clip.input_format)
            matrix = clip.matrix or ((clip.colour[2], clip.colour[3]) if clip.colour is not None else None)
            if matrix is not None and matrix[0] in SWSCALE:
                frame = frame.reformat(format=clip.pix_fmt, dst_colorspace=SWSCALE[matrix[0]], dst_color_range=matrix[1])
            pts = index if clip.times is None else round(clip.times[index] / time_base)
            frame.pts, frame.time_base = pts, time_base
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        for track, stream in audio:
            t = np.arange(int(track.rate * track.seconds)) / track.rate
            tone = (0.3 * np.sin(2 * np.pi * track.hz * t)).astype(np.float32)
            channels = 1 if track.layout == "mono" else 2
            samples = np.repeat(tone[None], channels, axis=0)
            step = stream.codec_context.frame_size or 1024
            for start in range(0, samples.shape[1], step):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + step]), format="fltp", layout=track.layout)
                chunk.sample_rate, chunk.pts = track.rate, start
                for packet in stream.encode(chunk):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        if subtitles is not None:
            from av.subtitles.subtitle import SubtitleSet

            for number, (text, start, end) in enumerate(clip.subtitles):
                pts = int(start * 1000)
                line = f"{number},0,Default,,0,0,0,,{text}".encode()
                packet = subtitles.codec_context.encode_subtitle(SubtitleSet.create(line, 0, int((end - start) * 1000), pts))
                packet.stream, packet.pts, packet.dts = subtitles, pts, pts
                packet.duration, packet.time_base = int((end - start) * 1000), Fraction(1, 1000)
                out.mux(packet)
    return path


@dataclass
class Seen:
    """One frame as a player shows it: its time (s) and (H, W, 3) float RGB on a 0-255 scale."""

    seconds: float
    rgb: np.ndarray = field(repr=False)


def _plane(frame: av.VideoFrame, index: int, deep: bool) -> np.ndarray:
    """One plane's samples as float, cropped to its visible size (no swscale involved)."""
    plane = frame.planes[index]
    dtype = np.uint16 if deep else np.uint8
    rows = np.frombuffer(bytes(plane), dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
    return rows[:, : plane.width].astype(np.float64)


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Y'CbCr to R'G'B' with the frame's tagged matrix and range, untagged as players assume; chroma
    upsampled by repetition. Done in numpy from the raw planes, independently of swscale."""
    name = frame.format.name
    if name.startswith(("gbr", "rgb", "bgr")) or not name.startswith(("yuv", "yuvj")):
        return frame.to_ndarray(format="rgb24").astype(np.float64)
    bits = max(c.bits for c in frame.format.components)
    y, cb, cr = (_plane(frame, i, bits > 8) for i in range(3))
    scale = 2 ** (bits - 8)
    y, cb, cr = y / scale, cb / scale, cr / scale
    across, down = y.shape[1] // cb.shape[1] + (y.shape[1] % cb.shape[1] > 0), y.shape[0] // cb.shape[0] + (y.shape[0] % cb.shape[0] > 0)
    cb, cr = (np.repeat(np.repeat(c, down, axis=0), across, axis=1)[: y.shape[0], : y.shape[1]] for c in (cb, cr))
    hd = frame.width >= 1280 or frame.height > 576
    kr, kb = MATRIX_K.get(frame.colorspace, MATRIX_K[1] if hd else MATRIX_K[6])
    if frame.color_range == 2 or name.startswith("yuvj"):
        y, cb, cr = y / 255, (cb - 128) / 255, (cr - 128) / 255
    else:
        y, cb, cr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1) * 255, 0, 255)


def player_view(path: Path, limit: int | None = None) -> list[Seen]:
    """What a player shows of ``path``'s first video stream: tags honoured, display rotation applied."""
    seen: list[Seen] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = stream.decode(packet)
            except av.InvalidDataError:  # a player skips what it cannot decode
                continue
            for frame in decoded:
                rgb = _to_rgb(frame)
                turns = (frame.rotation or 0) // 90
                seen.append(Seen(float(frame.time or 0.0), np.rot90(rgb, turns) if turns else rgb))
                if limit is not None and len(seen) == limit:
                    return seen
    return seen


def stream_summary(path: Path) -> list[tuple[str, str, str | None]]:
    """(type, codec, language) of each stream, in order."""
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name if s.codec_context else "", s.metadata.get("language")) for s in container.streams]


def packets(path: Path, index: int) -> list[bytes]:
    """The payload of every packet of stream ``index``, in file order."""
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams[index]) if p.size]


def colour_tags(path: Path) -> tuple[int, int, int, int]:
    """(primaries, transfer, matrix, range) of the first video frame."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range


def damage(path: Path, target: Path, size: int = 40_000) -> Path:
    """A copy of ``path`` with ``size`` bytes in its middle overwritten with noise (a bad sector, a failed
    transfer): the container's index is intact, some packets are garbage."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - size // 2 : middle + size // 2] = np.random.default_rng(15).integers(0, 256, size, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target
