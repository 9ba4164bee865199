"""``facetwin extract``: media in, aligned faces out into a face set, resumable at any frame.

Each file passes the content gate first, on the frames extract will take faces from (see
``safety.gate``): an explicit file is refused before anything is stored, so nothing of it enters the set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from facetwin.background import BackgroundWorker
from facetwin.errors import FacetwinError
from facetwin.faces.align import sharpness
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder, IdentityMatch
from facetwin.faces.picking import WIDE_SEARCH, FacePicker
from facetwin.faces.references import reference_embeddings
from facetwin.faceset import FaceSet, NewFace
from facetwin.media import (
    DamagedMedia,
    MediaError,
    MediaSource,
    collect_sources,
    describe_video,
    read_frames,
    read_video,
)
from facetwin.options import ExtractOptions
from facetwin.prefetch import prefetch
from facetwin.safety.gate import ContentGate, ContentRefused


@dataclass
class SourceResult:
    """What one input gave. ``problem`` is the one-line message for anything that went wrong."""

    path: Path
    frames: int = 0
    already_done: int = 0
    frames_with_face: int = 0
    faces: int = 0
    left_out: int = 0  # faces not kept because of --identity / --not-identity
    problem: str | None = None
    refused: bool = False
    notices: list[str] = field(default_factory=list)  # how the frames were read, where that changed them (HDR, bit depth)

    @property
    def useful(self) -> bool:
        """True when this input put faces in the set, in this run or an earlier one."""
        return self.faces > 0 or self.already_done > 0


@dataclass
class ExtractReport:
    results: list[SourceResult] = field(default_factory=list)
    fatal: str | None = None

    @property
    def exit_code(self) -> int:
        """Non-zero when a file was refused by the content gate, or nothing could be processed (or the set
        itself could not be written)."""
        if self.fatal or any(result.refused for result in self.results):
            return 1
        return 0 if any(result.useful for result in self.results) else 1

    @property
    def problems(self) -> list[str]:
        return [r.problem for r in self.results if r.problem] + ([self.fatal] if self.fatal else [])


def extract(
    inputs: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: ExtractOptions = ExtractOptions(),
    progress: Progress | None = None,
) -> ExtractReport:
    """Extract faces from every input into the face set at ``output``; never raises for one bad input.

    Three threads share the work: decoding (prefetch), the face models (here), and storing (a
    BackgroundWorker around ``FaceSet.add_frame``).
    """
    report = ExtractReport()
    try:
        embedder = FaceEmbedder()
        picker = _picker(embedder, options)
    except FacetwinError as exc:
        report.fatal = str(exc)
        return report
    collected = collect_sources(inputs)
    report.results.extend(SourceResult(Path(e.split(": ")[0]), problem=e) for e in collected.errors)
    if not collected.sources:
        return report
    try:
        faceset = FaceSet(output, create=True)
        faceset.require_current_template()
    except FacetwinError as exc:
        report.fatal = str(exc)
        return report
    picker.number_tracks_from(faceset.next_track())
    search = max(options.max_faces, WIDE_SEARCH) if picker.filters else options.max_faces
    analyser = FaceAnalyser(size=options.size, min_face=options.min_face, max_faces=search)
    gate = ContentGate()
    try:
        with BackgroundWorker(faceset.add_frame, name="facetwin-store") as store:
            for source in collected.sources:
                result = SourceResult(source.path)
                report.results.append(result)
                try:
                    gate.check(source, every=options.every)
                    picker.start_source()
                    _extract_source(source, faceset, store, analyser, picker, options, result, progress)
                except ContentRefused as exc:
                    result.problem, result.refused = str(exc), True
                    continue
                except (DamagedMedia, MediaError) as exc:
                    result.problem = str(exc)
                store.drain()
                if result.problem is None and result.frames and not result.faces and not result.already_done:
                    result.problem = f"{source.path}: no face found" + (
                        f" that --identity / --not-identity keep ({result.left_out} left out)" if result.left_out else "")
    except FacetwinError as exc:  # the face set itself failed (disk full, removed): stop, keep what is committed
        report.fatal = str(exc)
    finally:
        analyser.close()
        faceset.close()
    return report


def _picker(embedder: FaceEmbedder, options: ExtractOptions) -> FacePicker:
    """The face picker for ``options``: the reference images read and embedded (FacetwinError if one is bad)."""
    keep = leave = None
    if options.identity:
        keep = IdentityMatch(reference_embeddings(options.identity, embedder), options.identity_distance)
    if options.not_identity:
        leave = IdentityMatch(reference_embeddings(options.not_identity, embedder), options.identity_distance)
    return FacePicker(embedder, keep, leave)


def _extract_source(
    source: MediaSource,
    faceset: FaceSet,
    store: BackgroundWorker,
    analyser: FaceAnalyser,
    picker: FacePicker,
    options: ExtractOptions,
    result: SourceResult,
    progress: Progress | None,
) -> None:
    every = options.every if source.kind == "video" else 1
    description = describe_video(source.path) if source.kind == "video" else None
    total_frames = description.frame_count if description is not None else 1
    result.notices = description.reading_notices() if description is not None else []
    source_id = faceset.source_id(source.path, source.kind)
    done = faceset.done_frames(source_id)
    result.already_done = len(done)
    wanted = None if total_frames is None else len(range(0, total_frames, every))
    task = None
    if progress is not None:
        remaining = None if wanted is None else max(wanted - len(done), 0)
        label = f"{source.path.name} ({len(done)} frames done before)" if done else source.path.name
        task = progress.add_task(label, total=remaining)
    frames = read_video(source.path, every, done, description) if description is not None else read_frames(source, skip=done)
    for frame in prefetch(frames):
        faces = analyser.analyse(frame.rgb)
        left_out = picker.left_out
        picked = picker.pick(frame.seconds, faces)[: options.max_faces]
        result.left_out += picker.left_out - left_out
        stored = [
            NewFace(f.detection, f.landmarks, f.aligned.frame_to_crop, f.aligned.crop, sharpness(f.aligned.crop),
                    who.embedding, who.exact, who.track)
            for f, who in ((p.face, p.identity) for p in picked)
        ]
        store.put(source_id, frame.index, frame.seconds, stored)
        result.frames += 1
        result.frames_with_face += bool(stored)
        result.faces += len(stored)
        if progress is not None and task is not None:
            progress.advance(task)
    if progress is not None and task is not None:
        progress.update(task, total=result.frames)
