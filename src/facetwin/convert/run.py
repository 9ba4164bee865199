"""``facetwin convert``: a video, an image or a folder of images in; the same media out, faces swapped.

Per frame: detect, landmark (the modules extract uses), smooth the landmarks over time, align, swap in
batches, paste back. Decoding runs ahead on one thread, encoding behind on another, the face work and
the model in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from facetwin.background import BackgroundWorker
from facetwin.convert.blend import BlendOptions, paste
from facetwin.convert.smooth import OneEuroFilter
from facetwin.convert.swap import Swapper
from facetwin.errors import FacetwinError
from facetwin.faces.align import alignment_matrix
from facetwin.faces.analyse import FaceAnalyser, FoundFace
from facetwin.media import (
    Frame,
    MediaSource,
    TruncatedMedia,
    collect_sources,
    read_frames,
    video_info,
    write_image,
)
from facetwin.prefetch import prefetch
from facetwin.video_out import VideoWriter

ALIGN_SIZE = 256


@dataclass(frozen=True)
class ConvertOptions:
    direction: str = "a2b"
    blend: BlendOptions = field(default_factory=BlendOptions)
    crf: int = 18
    side_by_side: bool = False
    batch_size: int = 8
    smooth: bool = True
    max_faces: int = 1
    device: str = "auto"
    precision: str = "auto"


@dataclass
class ConvertReport:
    output: Path
    frames: int = 0
    swapped_frames: int = 0
    faces: int = 0
    problem: str | None = None

    @property
    def passed_through(self) -> int:
        return self.frames - self.swapped_frames


class _Tracks:
    """One One-Euro filter per face slot (largest face first), reset when that slot is empty."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.filters: dict[int, OneEuroFilter] = {}

    def smooth(self, slot: int, landmarks: np.ndarray, seconds: float) -> np.ndarray:
        if not self.enabled:
            return landmarks
        return self.filters.setdefault(slot, OneEuroFilter())(landmarks, seconds).astype(np.float32)

    def forget_from(self, slot: int) -> None:
        for key in [k for k in self.filters if k >= slot]:
            del self.filters[key]


class FrameConverter:
    """Swaps the faces of frames handed in batches; keeps the temporal state of one stream."""

    def __init__(self, swapper: Swapper, options: ConvertOptions) -> None:
        self.swapper, self.options = swapper, options
        self.analyser = FaceAnalyser(size=ALIGN_SIZE, max_faces=options.max_faces)
        self.tracks = _Tracks(options.smooth)

    def reset(self) -> None:
        self.tracks = _Tracks(self.options.smooth)

    def convert_batch(self, frames: list[Frame]) -> list[tuple[np.ndarray, int]]:
        """Return (output frame, faces swapped) for each input frame, in order."""
        found: list[list[tuple[FoundFace, np.ndarray]]] = []
        for frame in frames:
            faces = self.analyser.analyse(frame.rgb)
            self.tracks.forget_from(len(faces))
            found.append([(f, self.tracks.smooth(i, f.landmarks, frame.seconds)) for i, f in enumerate(faces)])
        jobs = [(fi, face, points) for fi, faces in enumerate(found) for face, points in faces]
        swapped = self.swapper.swap(
            [frames[fi].rgb for fi, _, _ in jobs],
            [alignment_matrix(points, ALIGN_SIZE) for _, _, points in jobs],
            ALIGN_SIZE,
            self.options.direction,
        )
        outputs = [frame.rgb for frame in frames]
        for (fi, _, points), result in zip(jobs, swapped, strict=True):
            outputs[fi] = paste(outputs[fi], result, points, self.options.blend)
        if self.options.side_by_side:
            outputs = [np.hstack([frame.rgb, out]) for frame, out in zip(frames, outputs, strict=True)]
        return [(out, len(faces)) for out, faces in zip(outputs, found, strict=True)]

    def close(self) -> None:
        self.analyser.close()


def _write_image_or_fail(path: Path, rgb: np.ndarray) -> None:
    try:
        write_image(path, rgb)
    except OSError as exc:
        raise FacetwinError(f"{path}: cannot write this image ({exc})") from exc


def _convert_video(source: Path, output: Path, converter: FrameConverter, report: ConvertReport, progress: Progress | None) -> None:
    info = video_info(source)
    width = info.width * (2 if converter.options.side_by_side else 1)
    task = progress.add_task(source.name, total=info.frame_count) if progress is not None else None
    output.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(output, source, width, info.height, converter.options.crf) as writer:
        with BackgroundWorker(writer.write, depth=32, name="facetwin-encode") as encoder:
            batch: list[Frame] = []

            def flush() -> None:
                for frame, (out, faces) in zip(batch, converter.convert_batch(batch), strict=True):
                    encoder.put(out, frame.pts)
                    report.frames += 1
                    report.swapped_frames += faces > 0
                    report.faces += faces
                if progress is not None and task is not None:
                    progress.advance(task, len(batch))
                batch.clear()

            try:
                for frame in prefetch(read_frames(MediaSource(source, "video"))):
                    batch.append(frame)
                    if len(batch) >= converter.options.batch_size:
                        flush()
            finally:
                if batch:
                    flush()


def convert(
    input_path: Path,
    model_dir: Path,
    output: Path,
    options: ConvertOptions = ConvertOptions(),
    progress: Progress | None = None,
) -> ConvertReport:
    """Convert one video, image or folder of images. A truncated video keeps the frames converted so far."""
    if options.direction not in ("a2b", "b2a"):
        raise FacetwinError(f"--direction is a2b or b2a, not {options.direction!r}")
    collected = collect_sources([input_path])
    if collected.errors:
        raise FacetwinError(collected.errors[0])
    swapper = Swapper(model_dir, options.device, options.precision)
    converter = FrameConverter(swapper, options)
    report = ConvertReport(output)
    try:
        if input_path.is_dir():
            output.mkdir(parents=True, exist_ok=True)
            images = [s for s in collected.sources if s.kind == "image"]
            task = progress.add_task(input_path.name, total=len(images)) if progress is not None else None
            for source in images:
                converter.reset()
                frame = next(iter(read_frames(source)))
                out, faces = converter.convert_batch([frame])[0]
                _write_image_or_fail(output / source.path.name, out)
                report.frames += 1
                report.swapped_frames += faces > 0
                report.faces += faces
                if progress is not None and task is not None:
                    progress.advance(task)
        elif collected.sources[0].kind == "image":
            frame = next(iter(read_frames(collected.sources[0])))
            out, faces = converter.convert_batch([frame])[0]
            _write_image_or_fail(output, out)
            report.frames, report.swapped_frames, report.faces = 1, int(faces > 0), faces
        else:
            try:
                _convert_video(input_path, output, converter, report, progress)
            except TruncatedMedia as exc:
                report.problem = f"{exc}; {report.frames} converted frames written to {output}"
    finally:
        converter.close()
    return report
