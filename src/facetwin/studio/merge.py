"""The merge preview: one frame of a video swapped with a model, re-blended in milliseconds as settings change.

The slow part of a frame (decode, detect, mesh, the model) depends on the frame, the model's checkpoint
and the direction only; it is done once and kept (the last few frames), so a change of mask, erode,
feather, colour or blend only re-runs ``facetwin.convert.blend.paste`` (the function convert uses) and
the watermark. The frame shown carries the same invisible watermark as every frame convert writes, and
passes the content gate's detector first (an explicit frame is refused, as convert refuses it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from facetwin.arrays import RGBImage
from facetwin.convert.blend import paste
from facetwin.convert.lips import close_swapped_lips
from facetwin.convert.restore import ExpressionKeeper
from facetwin.convert.run import ALIGN_SIZE, check_options
from facetwin.errors import FacetwinError
from facetwin.faces.align import alignment_matrix
from facetwin.faces.analyse import FaceAnalyser
from facetwin.media import DecodedToRGB, MediaError, MediaSource, describe_video, read_frames, video_info
from facetwin.modeldir import ModelDir
from facetwin.options import BlendOptions, ConvertOptions
from facetwin.provenance import watermark
from facetwin.provenance.payload import Payload, model_tag
from facetwin.safety.gate import ContentGate, ContentRefused
from facetwin.safety.rule import CheckedFrame, decide
from facetwin.swapper import SwappedFace, Swapper

KEPT_FRAMES = 6


@dataclass(frozen=True)
class Swapped:
    """A frame with its faces found and swapped: everything a re-blend needs."""

    rgb: RGBImage = field(repr=False)
    faces: list[tuple[np.ndarray, SwappedFace]] = field(repr=False)  # (478 x 3 landmarks, swapped face)
    model_id: str
    seconds: float


@dataclass(frozen=True)
class Preview:
    original_jpeg: bytes = field(repr=False)
    swapped_jpeg: bytes = field(repr=False)
    faces: int
    model_id: str
    width: int
    height: int
    seconds: float  # the frame's time in the video
    timings_ms: dict[str, float]  # where the time went: frame (decode, detect, swap; 0 when kept), blend, encode


def read_frame(path: Path, index: int) -> tuple[RGBImage, float]:
    """Frame ``index`` (from 0, in decode order at the stream's average rate) of a video or the image itself,
    with its time in seconds. Seeks to the keyframe before it, so a late frame of a long video is quick.
    Raises MediaError for an unreadable file or an index past the end."""
    if path.suffix.lower() not in {".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}:
        frame = next(iter(read_frames(MediaSource(path, "image"))))
        return frame.rgb, 0.0
    try:
        upright = DecodedToRGB(describe_video(path))  # the colours and orientation every stage reads
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            base = float(stream.time_base or 1)
            start = stream.start_time or 0
            if index > 0:
                container.seek(start + int(index / rate / base), stream=stream, backward=True, any_frame=False)
            for decoded in container.decode(stream):
                at = round(((decoded.pts or 0) - start) * base * rate)
                if at >= index:
                    return upright(decoded)[0], float(decoded.time or 0.0)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise MediaError(f"{path}: cannot read frame {index} ({exc})") from exc
    raise MediaError(f"{path}: has no frame {index}")


def jpeg(rgb: RGBImage, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FacetwinError("cannot encode the preview")
    return data.tobytes()


class MergePreview:
    """Keeps one model loaded (reloaded when a newer checkpoint appears), the face models, and the last few
    swapped frames. Thread-safe: one preview at a time."""

    def __init__(self, gate: ContentGate, device: str = "auto") -> None:
        self.gate, self.device = gate, device
        self._lock = threading.Lock()
        self._swapper: Swapper | None = None
        self._analyser: FaceAnalyser | None = None
        self._frames: OrderedDict[tuple[object, ...], Swapped] = OrderedDict()

    def frames(self, path: Path) -> tuple[int, float]:
        """How many frames a video has (1 for an image), and its frame rate."""
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}:
            return 1, 0.0
        info = video_info(path)
        count = info.frame_count or sum(1 for _ in read_frames(MediaSource(path, "video")))
        return count, info.fps

    def _model(self, model_dir: Path) -> Swapper:
        folder = ModelDir(model_dir)
        latest = folder.latest_checkpoint()
        if self._swapper is None or self._swapper.model_dir.root != folder.root or self._swapper.checkpoint != latest:
            self._swapper = Swapper(folder, self.device)
        return self._swapper

    def _swap(self, media: Path, index: int, model_dir: Path, direction: str, max_faces: int) -> Swapped:
        swapper = self._model(model_dir)
        key = (str(media), media.stat().st_mtime, index, str(swapper.checkpoint), direction, max_faces)
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        rgb, seconds = read_frame(media, index)
        decision = decide([CheckedFrame(index, seconds, scores) for scores in self.gate.detector.scores([rgb])])
        if decision.refused:
            raise ContentRefused(media, decision)
        if self._analyser is None or self._analyser.max_faces != max_faces:
            if self._analyser is not None:
                self._analyser.close()
            self._analyser = FaceAnalyser(size=ALIGN_SIZE, max_faces=max_faces)
        located = [points for _, points in self._analyser.locate(rgb)]
        swapped = swapper.swap([rgb] * len(located), [alignment_matrix(p, ALIGN_SIZE) for p in located], ALIGN_SIZE, direction)
        result = Swapped(rgb, list(zip(located, swapped)), swapper.model_id, seconds)
        self._frames[key] = result
        while len(self._frames) > KEPT_FRAMES:
            self._frames.popitem(last=False)
        return result

    def render(self, media: Path, index: int, model_dir: Path, direction: str, blend: BlendOptions,
               max_faces: int = 1) -> Preview:
        """Frame ``index`` of ``media`` as convert would write it with these settings: faces swapped by the
        model's newest checkpoint, blended, watermarked. Raises FacetwinError (bad settings, no checkpoint,
        unreadable frame) or ContentRefused."""
        check_options(ConvertOptions(direction=direction, blend=blend))
        with self._lock:
            t0 = time.perf_counter()
            frame = self._swap(media, index, model_dir, direction, max_faces)
            t1 = time.perf_counter()
            out = frame.rgb
            keeper = ExpressionKeeper(blend.restore)  # one frame: the eyes' open level is the default's
            for track, (points, face) in enumerate(frame.faces):
                out = paste(out, face, points, blend, keeper.weights(track, points))
                if keeper.mouth and self._analyser is not None:
                    out, _ = close_swapped_lips(out, points, self._analyser.landmarker)
            if frame.faces:
                out = watermark.embed(out, Payload(model_tag(frame.model_id)))
            t2 = time.perf_counter()
            original, swapped = jpeg(frame.rgb), jpeg(out)
            t3 = time.perf_counter()
        height, width = out.shape[:2]
        timings = {"frame": (t1 - t0) * 1000, "blend": (t2 - t1) * 1000, "encode": (t3 - t2) * 1000}
        return Preview(original, swapped, len(frame.faces), frame.model_id, width, height, frame.seconds, timings)

    def close(self) -> None:
        if self._analyser is not None:
            self._analyser.close()
