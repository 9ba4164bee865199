"""Writing video: H.264 frames on the source's own timestamps, and the source's audio carried over untouched.

Audio packets are copied, not re-encoded, so the output's sound is bit-for-bit the input's. They are
muxed as the video advances (everything up to the current frame's time), so memory stays flat on long
clips. The file is written under a temporary name and handed to `finish` when complete (by default a
rename; convert signs it into place). It is kept when decoding of the input stopped early (the frames
so far are good), and removed when anything else went wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from facetwin.errors import FacetwinError
from facetwin.media import TruncatedMedia


class VideoWriter:
    def __init__(
        self,
        path: Path,
        source: Path,
        width: int,
        height: int,
        crf: int = 18,
        finish: Callable[[Path, Path], None] = os.replace,
    ) -> None:
        self.path = path
        self.finish = finish
        self.partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self._input = av.open(str(source))
        video_in = self._input.streams.video[0]
        self.time_base: Fraction = video_in.time_base or Fraction(1, 25)
        rate = video_in.average_rate or video_in.guessed_rate or 25
        try:
            self._out = av.open(str(self.partial), "w")
        except (OSError, av.FFmpegError) as exc:
            raise FacetwinError(f"{path}: cannot write here ({getattr(exc, 'strerror', exc)})") from exc
        self._video = self._out.add_stream("libx264", rate=rate)
        self._video.width, self._video.height = width - width % 2, height - height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = self.time_base
        self._video.codec_context.time_base = self.time_base
        self._video.options = {"crf": str(crf), "preset": "veryfast"}
        self._audio_in = self._input.streams.audio[0] if self._input.streams.audio else None
        self._audio_out = self._out.add_stream_from_template(self._audio_in) if self._audio_in is not None else None
        self._audio_packets = self._input.demux(self._audio_in) if self._audio_in is not None else None
        self._audio_done = self._audio_in is None
        self.frames = 0

    def _mux_audio_until(self, seconds: float | None) -> None:
        if self._audio_done or self._audio_packets is None or self._audio_in is None or self._audio_out is None:
            return
        time_base = self._audio_in.time_base or Fraction(1, 1)
        for packet in self._audio_packets:
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = self._audio_out
            self._out.mux(packet)
            if seconds is not None and packet.pts is not None and float(packet.pts * time_base) > seconds + 0.5:
                return
        self._audio_done = True

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        height, width = self._video.height, self._video.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]), format="rgb24")
        frame.pts = pts if pts is not None else self.frames
        frame.time_base = self.time_base
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        self._mux_audio_until(float(frame.pts * self.time_base))

    def close(self, keep: bool = True) -> None:
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            self._mux_audio_until(None)
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
        self.close(keep=kind is None or issubclass(kind, TruncatedMedia))
