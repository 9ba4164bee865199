"""``facetwin convert``: a video, an image or a folder of images in; the same media out, faces swapped.

Per frame: detect, landmark (the modules extract uses), smooth the landmarks over time, align, swap in
batches, paste back, watermark. Decoding runs ahead on one thread, encoding behind on another, the face
work and the model in between.

Two things always happen and have no switch: the content gate screens every file (an image before any
work, a video's frames as they are converted; an explicit file is refused and nothing is written for it),
and every output is labelled: swapped frames carry the invisible watermark and the finished file is
signed with Content Credentials before it appears at the output path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress, TaskID

from facetwin.background import BackgroundWorker
from facetwin.choice import choose_faces
from facetwin.convert.blend import BLEND_MODES, paste
from facetwin.convert.colour import COLOUR_MODES
from facetwin.convert.lips import close_swapped_lips
from facetwin.convert.masks import MASK_MODES
from facetwin.convert.restore import ExpressionKeeper
from facetwin.convert.tracking import FaceFollower, FollowCounts, FollowedFace
from facetwin.errors import FacetwinError
from facetwin.faces.align import alignment_matrix
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder, IdentityMatch
from facetwin.media import (
    DamagedMedia,
    Frame,
    MediaSource,
    VideoDescription,
    collect_sources,
    describe_video,
    read_picture,
    read_video,
    write_picture,
)
from facetwin.media.video_out import VideoWriter
from facetwin.options import ConvertOptions
from facetwin.prefetch import prefetch
from facetwin.provenance.credentials import SigningIdentity, local_identity, mime_type
from facetwin.provenance.label import Labeller, require_signable
from facetwin.safety.gate import ContentGate, ContentRefused, FrameScreen
from facetwin.swapper import TARGET_SIDE, Swapper

ALIGN_SIZE = 256  # the aligned crop convert aligns to (the model's coverage is cut from it)
TRACKED_FACES = 16  # faces followed per frame (then chosen by identity and --max-faces)


@dataclass
class ConvertReport:
    output: Path
    frames: int = 0
    swapped_frames: int = 0
    faces: int = 0
    problem: str | None = None
    refused: list[str] = field(default_factory=list)
    watermark: str = ""
    notices: list[str] = field(default_factory=list)  # one line for each thing written differently from the input or asked
    tracks: int = 0  # faces followed and swapped (one per person and appearance)
    others: int = 0  # tracks of other people, left unswapped
    filled: int = 0  # faces swapped in frames where detection missed them (between two frames that found them)
    restored: int = 0  # faces --restore blended some of the source's own eyes or mouth into (weight above 0)
    lips_closed: int = 0  # faces whose parted lips --restore mouth|both closed towards the source's (convert.lips)

    @property
    def passed_through(self) -> int:
        return self.frames - self.swapped_frames


@dataclass(frozen=True)
class Converted:
    """One frame done: the frame as read, the frame to write, and how many faces were swapped in it."""

    frame: Frame
    rgb: np.ndarray
    faces: int


class FrameConverter:
    """Swaps the faces of frames handed in batches; keeps the temporal state of one stream (its tracks).

    ``choice``: whose faces to swap (None: everyone). Faces are followed along tracks
    (``convert.tracking``), so a frame comes back from ``push`` up to ``tracking.MAX_GAP`` frames after it
    went in; ``finish`` returns the rest."""

    def __init__(self, swapper: Swapper, options: ConvertOptions, labeller: Labeller, choice: IdentityMatch | None = None,
                 embedder: FaceEmbedder | None = None) -> None:  # fmt: skip
        self.swapper, self.options, self.labeller, self.choice = swapper, options, labeller, choice
        self.analyser = FaceAnalyser(size=ALIGN_SIZE, max_faces=max(options.max_faces, TRACKED_FACES))
        self.embedder = embedder or FaceEmbedder()
        self.follower = self._follower()
        self.keeper = ExpressionKeeper(options.blend.restore)
        self.counts = FollowCounts()
        self.restored = 0  # faces --restore acted on, over every source
        self.lips_closed = 0  # faces whose lips --restore closed towards the source's (convert.lips), over every source
        self.screen: FrameScreen | None = None

    def _follower(self) -> FaceFollower[Frame]:
        return FaceFollower(self.embedder, self.choice, self.options.smooth, self.options.max_faces)

    def start(self, screen: FrameScreen) -> None:
        """A new source: forget the last one's tracks, and check its frames with this screen."""
        self.follower = self._follower()
        self.keeper = ExpressionKeeper(self.options.blend.restore)
        if self.screen is not None:
            self.screen.close()
        self.screen = screen

    def convert_batch(self, frames: list[Frame]) -> list[tuple[np.ndarray, int]]:
        """Return (output frame, faces swapped) for each of these frames, in order: the whole stream."""
        done = self.push(frames) + self.finish()
        return [(c.rgb, c.faces) for c in done]

    def push(self, frames: list[Frame]) -> list[Converted]:
        """Take the next frames of the stream; return the frames that are done, in order."""
        if self.screen is not None:
            self.screen.add(frames)
        ready = []
        for frame in frames:
            ready += self.follower.push(frame, frame.seconds, frame.rgb, self.analyser.locate(frame.rgb))
        return self._swap(ready)

    def finish(self) -> list[Converted]:
        """The frames still held at the end of the stream; the next frames start a new one."""
        done = self._swap(self.follower.finish())
        counts = self.follower.counts
        self.counts.tracks |= counts.tracks
        self.counts.others |= counts.others
        self.counts.filled += counts.filled
        self.follower = self._follower()
        return done

    def _swap(self, ready: list[tuple[Frame, list[FollowedFace]]]) -> list[Converted]:
        jobs = [(fi, face.landmarks) for fi, (_, faces) in enumerate(ready) for face in faces]
        restore = [self.keeper.weights(face.track, face.measured) for _, faces in ready for face in faces]
        self.restored += sum(keep.any for keep in restore)
        swapped = self.swapper.swap(
            [ready[fi][0].rgb for fi, _ in jobs],
            [alignment_matrix(points, ALIGN_SIZE) for _, points in jobs],
            ALIGN_SIZE,
            self.options.direction,
        )
        outputs = [frame.rgb for frame, _ in ready]
        measured = [face.measured for _, faces in ready for face in faces]
        for (fi, points), result, keep, source in zip(jobs, swapped, restore, measured, strict=True):
            outputs[fi] = paste(outputs[fi], result, points, self.options.blend, keep)
            if self.keeper.mouth:
                outputs[fi], closing = close_swapped_lips(outputs[fi], source, self.analyser.landmarker)
                self.lips_closed += closing.pixels > 0
        if self.options.side_by_side:
            outputs = [np.hstack([frame.rgb, out]) for (frame, _), out in zip(ready, outputs, strict=True)]
        return [
            Converted(frame, self.labeller.mark(out) if faces else out, len(faces))
            for (frame, faces), out in zip(ready, outputs, strict=True)
        ]

    def close(self) -> None:
        self.analyser.close()
        if self.screen is not None:
            self.screen.close()


def _convert_image(source: MediaSource, output: Path, converter: FrameConverter, gate: ContentGate, report: ConvertReport) -> None:
    """One image: gated, swapped, written under a hidden name the way the input was written (alpha,
    colour profile, grey, quality) and signed into place."""
    converter.start(gate.screen(source))
    picture = read_picture(source.path)
    out, faces = converter.convert_batch([Frame(0, 0.0, picture.rgb, None, picture.alpha)])[0]
    alpha = picture.alpha
    if alpha is not None and converter.options.side_by_side:
        alpha = np.hstack([alpha, alpha])
    rendered = Labeller.rendering_path(output)
    try:
        notices = write_picture(rendered, out, alpha, picture.description)
    except OSError as exc:
        raise FacetwinError(f"{output}: cannot write this image ({exc})") from exc
    converter.labeller.finish(rendered, output, source.path, 1, int(faces > 0))
    report.notices += [note.replace(str(rendered), str(output)) for note in picture.description.reading_notices() + notices]
    report.frames += 1
    report.swapped_frames += faces > 0
    report.faces += faces


def _convert_video(
    source: Path, output: Path, converter: FrameConverter, gate: ContentGate, report: ConvertReport, progress: Progress | None
) -> None:
    description = describe_video(source)
    converter.start(gate.screen(MediaSource(source, "video")))
    task = progress.add_task(source.name, total=description.frame_count) if progress is not None else None
    output.parent.mkdir(parents=True, exist_ok=True)

    def sign_into_place(rendered: Path, final: Path) -> None:
        if converter.screen is not None:
            converter.screen.verdict()
        converter.labeller.finish(rendered, final, source, report.frames, report.swapped_frames)

    options = converter.options
    writer = VideoWriter(output, description, options.crf, options.side_by_side, finish=sign_into_place)
    try:
        _write_video(source, description, writer, converter, report, progress, task)
    finally:
        report.notices += writer.notices


def _write_video(source: Path, description: VideoDescription, writer: VideoWriter, converter: FrameConverter,
                 report: ConvertReport, progress: Progress | None, task: TaskID | None) -> None:
    options = converter.options
    with writer:
        with BackgroundWorker(writer.write, depth=32, name="facetwin-encode") as encoder:
            batch: list[Frame] = []

            def flush(final: bool = False) -> None:
                done = converter.push(batch) + (converter.finish() if final else [])
                for converted in done:
                    encoder.put(converted.rgb, converted.frame.pts)
                    report.frames += 1
                    report.swapped_frames += converted.faces > 0
                    report.faces += converted.faces
                if progress is not None and task is not None:
                    progress.advance(task, len(done))
                batch.clear()

            try:
                for frame in prefetch(read_video(source, description=description)):
                    batch.append(frame)
                    if len(batch) >= options.batch_size:
                        flush()
            except DamagedMedia:
                flush(final=True)
                raise
            flush(final=True)


def _image_output(folder: Path, source: Path, report: ConvertReport) -> Path:
    """An image keeps its format where that format can carry Content Credentials; others become PNG."""
    target = folder / source.name
    if mime_type(target) is not None:
        return target
    report.notices.append(f"{source}: written as {target.with_suffix('.png').name} ({source.suffix} files cannot carry Content Credentials)")
    return target.with_suffix(".png")


def check_options(options: ConvertOptions) -> None:
    """Raise FacetwinError, naming the choices, for an unknown direction or mask, colour or blend mode."""
    if options.direction not in TARGET_SIDE:
        raise FacetwinError(f"--direction is a2b or b2a, not {options.direction!r}")
    MASK_MODES[options.blend.mask], COLOUR_MODES[options.blend.colour], BLEND_MODES[options.blend.blend]


def convert(
    input_path: Path,
    model_dir: Path,
    output: Path,
    options: ConvertOptions = ConvertOptions(),
    progress: Progress | None = None,
    signer: SigningIdentity | None = None,
) -> ConvertReport:
    """Convert one video, image or folder of images. A truncated video keeps the frames converted so far.
    ``signer`` signs the Content Credentials (default: the local identity, made on first use).

    Raises ContentRefused for an explicit video or image; in a folder, explicit images are skipped
    (listed in the report) and the rest converted."""
    check_options(options)
    collected = collect_sources([input_path])
    if collected.errors:
        raise FacetwinError(collected.errors[0])
    if not input_path.is_dir():
        require_signable(output)
    swapper = Swapper(model_dir, options.device, options.precision)
    labeller = Labeller(swapper.model_id, options.direction, signer or local_identity())
    embedder = FaceEmbedder()
    report = ConvertReport(output, watermark=labeller.payload.hex)
    choice = choose_faces(swapper.model_dir, options.direction, embedder, options.identity, options.all_faces,
                          options.identity_distance, report.notices)  # fmt: skip
    converter = FrameConverter(swapper, options, labeller, choice, embedder)
    gate = ContentGate()
    try:
        if input_path.is_dir():
            output.mkdir(parents=True, exist_ok=True)
            images = [s for s in collected.sources if s.kind == "image"]
            task = progress.add_task(input_path.name, total=len(images)) if progress is not None else None
            for source in images:
                try:
                    _convert_image(source, _image_output(output, source.path, report), converter, gate, report)
                except ContentRefused as exc:
                    report.refused.append(str(exc))
                if progress is not None and task is not None:
                    progress.advance(task)
        elif collected.sources[0].kind == "image":
            _convert_image(collected.sources[0], output, converter, gate, report)
        else:
            try:
                _convert_video(input_path, output, converter, gate, report, progress)
            except DamagedMedia as exc:
                report.problem = f"{exc}; {report.frames} converted frames written to {output}"
    finally:
        converter.close()
        report.tracks, report.others, report.filled = len(converter.counts.tracks), len(converter.counts.others), converter.counts.filled
        report.restored, report.lips_closed = converter.restored, converter.lips_closed
    return report

