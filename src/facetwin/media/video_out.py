"""Writing video: H.264 frames on the source's own timestamps, and the source's other streams carried over.

How the output is written (size, chroma, colour tags, which streams are copied, converted or left out)
is decided by ``facetwin.media.plan``; this module carries it out. Streams are added in the input's
order. Copied packets are muxed as the video advances (everything up to the current frame's time), so
memory stays flat on long clips and nothing is muxed past where the video ends. The file is written under a temporary name and handed to ``finish``
when complete (by default a rename; convert signs it into place). It is kept when the input was
damaged (the frames that decoded are good; when the video's end was lost, the other streams are cut
where the video ends, so no sound plays over a frozen picture), and removed when anything else went
wrong.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation

from facetwin.errors import FacetwinError
from facetwin.media.plan import VideoPlan, plan_video
from facetwin.media.video_in import DamagedMedia, VideoDescription

ENCODE_INTERPOLATION = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INP
DEFAULT_ASS_HEADER = (  # what FFmpeg's text subtitle decoders put in front of their events
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\nFormat: Name, Fontname, "
    b"Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, "
    b"ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: "
    b"Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, "
    b"Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


def _can_copy(format_name: str, stream: av.stream.Stream) -> bool:
    """Whether a container of ``format_name`` accepts ``stream``'s packets as they are (a header written
    in memory with a copy of it)."""
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
        return True
    except (av.FFmpegError, ValueError, NotImplementedError, TypeError):
        return False


@dataclass
class _Carried:
    """One of the input's other streams and its output stream."""

    source: Any
    target: Any
    action: str


class VideoWriter:
    """Write upright RGB frames of ``description``'s video to ``path`` as ``VideoWriter.plan`` says
    (``plan.notices``: what had to change), carrying the input's other streams along."""

    def __init__(self, path: Path, description: VideoDescription, crf: int = 18, side_by_side: bool = False,
                 finish: Callable[[Path, Path], None] = os.replace) -> None:
        self.path, self.finish, self.description = path, finish, description
        self.partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self._input = av.open(str(description.path))
        try:
            self._out = av.open(str(self.partial), "w")
        except (OSError, av.FFmpegError) as exc:
            self._input.close()
            raise FacetwinError(f"{path}: cannot write here ({getattr(exc, 'strerror', exc)})") from exc
        others = [s for s in self._input.streams if s.index != description.stream_index]
        copyable = frozenset(s.index for s in others if _can_copy(self._out.format.name, s))
        self.plan: VideoPlan = plan_video(description, path, copyable, frozenset(self._out.supported_codecs), side_by_side)
        actions = {p.stream.index: p.action for p in self.plan.streams}
        self.time_base: Fraction = description.time_base
        self._carried: dict[int, _Carried] = {}
        for stream in self._input.streams:
            if stream.index == description.stream_index:
                self._video = self._add_video(self.plan, crf)
            elif actions.get(stream.index, "drop") != "drop":
                self._carried[stream.index] = _Carried(stream, self._add_carried(stream, actions[stream.index]), actions[stream.index])
        self._out.set_chapters(self._input.chapters())
        self._out.start_encoding()
        self._packets: Iterator[av.Packet] | None = (
            self._input.demux([c.source for c in self._carried.values()]) if self._carried else None)
        self._held: tuple[av.Packet, float | None] | None = None
        self.frames = 0
        self._last_pts: int | None = None
        self.skipped: dict[int, int] = {}  # input stream index: packets that could not be carried

    def _add_video(self, plan: VideoPlan, crf: int) -> Any:
        video = self._out.add_stream("libx264", rate=self.description.rate or 25)
        video.width, video.height, video.pix_fmt = plan.width, plan.height, plan.pix_fmt
        video.time_base = self.time_base
        context = video.codec_context
        context.time_base = self.time_base
        context.color_primaries, context.color_trc = plan.colour.primaries, plan.colour.transfer
        context.colorspace, context.color_range = plan.colour.matrix, plan.colour.range_code
        video.options = {"crf": str(crf), "preset": "veryfast"}
        return video

    def _add_carried(self, stream: Any, action: str) -> Any:
        if action == "copy":
            target = self._out.add_stream_from_template(stream)
        elif action == "aac":
            context = stream.codec_context
            target = self._out.add_stream("aac", rate=context.sample_rate or 48000)
            target.layout = context.layout
        else:  # mov_text, from the text subtitles' own ASS header (or the usual default one)
            target = self._out.add_stream("mov_text")
            target.time_base = stream.time_base
            target.codec_context.subtitle_header = stream.codec_context.subtitle_header or DEFAULT_ASS_HEADER
        for key in ("language", "title", "handler_name"):
            if stream.metadata.get(key):
                target.metadata[key] = stream.metadata[key]
        try:
            target.disposition = stream.disposition
        except (AttributeError, TypeError, ValueError):
            pass
        return target

    def _carry(self, carried: _Carried, packet: av.Packet) -> None:
        if carried.action == "copy":
            packet.stream = carried.target
            self._out.mux(packet)
        elif carried.action == "aac":
            rate = carried.target.codec_context.sample_rate
            for frame in carried.source.decode(packet):
                # on the encoder's clock (1/sample rate), from the source's own time: no shift
                frame.pts = round(frame.time * rate) if frame.time is not None else None
                frame.time_base = Fraction(1, rate)
                for encoded in carried.target.encode(frame):
                    self._out.mux(encoded)
        else:
            self._carry_subtitle(carried, packet)

    def _carry_subtitle(self, carried: _Carried, packet: av.Packet) -> None:
        from av.subtitles.subtitle import SubtitleSet

        if packet.pts is None or packet.size == 0:
            return
        start = float(packet.pts * packet.time_base)
        length = float((packet.duration or 0) * packet.time_base) or 2.0
        target_base = carried.target.time_base
        for rect in carried.source.decode(packet):
            line = getattr(rect, "ass", None)  # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text"
            if not line:
                continue
            pts = int(round(start / target_base))
            duration = int(round(length / target_base))
            made = SubtitleSet.create(line if isinstance(line, bytes) else str(line).encode(), 0, duration, pts)
            encoded = carried.target.codec_context.encode_subtitle(made)
            encoded.stream = carried.target
            encoded.pts = encoded.dts = pts
            encoded.duration, encoded.time_base = duration, target_base
            self._out.mux(encoded)

    def _carry_until(self, seconds: float | None, cut: float | None = None) -> None:
        """Mux the other streams' packets up to ``seconds`` (all when None), none at or after ``cut``.

        Packets are read ahead one at a time and held until the video reaches them, so that when the
        video ends early nothing has been muxed past its end."""
        while True:
            if self._held is None:
                self._held = self._next_packet()
                if self._held is None:
                    return
            packet, at = self._held
            if seconds is not None and at is not None and at > seconds:
                return
            self._held = None
            if cut is not None and at is not None and at >= cut:
                continue
            carried = self._carried[packet.stream.index]
            try:
                self._carry(carried, packet)
            except av.FFmpegError:  # a damaged packet (bad data, a timestamp out of order)
                self.skipped[carried.source.index] = self.skipped.get(carried.source.index, 0) + 1

    def _next_packet(self) -> tuple[av.Packet, float | None] | None:
        """The next packet of the other streams and its time (s), or None at their end (or where the file breaks off)."""
        if self._packets is None:
            return None
        try:
            for packet in self._packets:
                if packet.dts is None and packet.size == 0:  # the demuxer's final flush packet
                    continue
                when = packet.pts if packet.pts is not None else packet.dts
                return packet, float(when * packet.time_base) if when is not None and packet.time_base else None
        except av.FFmpegError:
            pass
        self._packets = None
        return None

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one upright (H, W, 3) uint8 RGB frame at ``pts`` (in ``time_base``; None: the next one)."""
        colour = self.plan.colour
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # (primaries and transfer are tagged on the stream, not passed here: FFmpeg 8's swscale would
        # convert the gamut from what it assumes an untagged RGB frame is)
        frame = frame.reformat(format=self.plan.pix_fmt, dst_colorspace=colour.swscale_matrix,
                               dst_color_range=colour.range_code, interpolation=ENCODE_INTERPOLATION)
        if pts is None:
            pts = self.frames if self._last_pts is None else self._last_pts + 1
        if self._last_pts is not None and pts <= self._last_pts:  # a damaged file's repeated timestamp
            pts = self._last_pts + 1
        frame.pts, frame.time_base = pts, self.time_base
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        self._last_pts = pts
        self._carry_until(float(pts * self.time_base))

    @property
    def notices(self) -> list[str]:
        """The plan's notices and, once written, one for each stream that lost packets to damage."""
        by_index = {p.stream.index: p.stream for p in self.plan.streams}
        return list(self.plan.notices) + [f"{self.path}: {by_index[i].describe()}: {n} damaged packets could not be carried"
                                          for i, n in sorted(self.skipped.items())]

    @property
    def video_end(self) -> float | None:
        """Where the written video ends (seconds): the last frame's time plus one frame."""
        if self._last_pts is None:
            return None
        return float(self._last_pts * self.time_base) + (1 / self.description.fps if self.description.fps else 0.0)

    def close(self, keep: bool = True, cut: float | None = None) -> None:
        """Finish the file; other streams are cut at ``cut`` seconds when given. ``keep``: hand the file
        to ``finish``, else remove it."""
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            self._carry_until(None, cut)
            for carried in self._carried.values():
                if carried.action == "aac":
                    for packet in carried.target.encode(None):
                        self._out.mux(packet)
        finally:
            self._out.close()
            self._input.close()
        if keep:
            try:
                self.finish(self.partial, self.path)
            finally:
                self.partial.unlink(missing_ok=True)
        else:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        damaged = value if isinstance(value, DamagedMedia) else None
        cut = self.video_end if damaged is not None and damaged.damage.tail_lost else None
        self.close(keep=kind is None or damaged is not None, cut=cut)
