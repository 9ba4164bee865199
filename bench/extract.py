"""Extraction: speed on the demo clips, and how well detection finds faces at every frame size.

Prints JSON with three parts.

``cap13``: full ``facetwin extract`` runs (decode, detect, landmarks, align, PNG + SQLite write) into
fresh face sets on cap13_edit2.mp4 (765 frames, 400x300), with today's detector and with the
single-pass detector it replaced (``OneShotDetector`` below, kept for this comparison), alternating old
and new so that both see the same machine load; the medians and their ratio are the figures to quote.
``franck``: the same runs on all of franck.mp4 (4,800 frames, 360x288), today's detector only, and
``stages``: one extra, single-threaded pass over franck.mp4 that times each stage separately.

``detection``: the detector alone on the labelled set of ``labelled_faces.py`` (demo faces pasted
into photographs, and real group photos; 70 % and 30 % of the frames) at 400x300 (cap13's size),
1280x720, 1920x1080 and 3840x2160: recall of faces of 40 px and more (overall and by size), precision,
false faces per 100 frames, frames/s and model passes per frame, for the new detector and the old one on
the same frames.

    .venv/bin/python bench/extract.py [--runs 3] [--every 1] [--frames 100] [--skip-clips] [--skip-detection]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np
from labelled_faces import CARE_FROM, LabelledSet, match

import facetwin.faces.analyse
from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import ExtractOptions, extract
from facetwin.faces.align import align_face, sharpness
from facetwin.faces.detect import Detection, FaceDetector
from facetwin.faces.landmarks import FaceLandmarker
from facetwin.faces.tiling import calls_per_frame
from facetwin.media import MediaSource, read_frames

SIZES = ((400, 300), (1280, 720), (1920, 1080), (3840, 2160))  # cap13's size, then the issue's three
SIZE_BINS = ((40, 60), (60, 100), (100, 200), (200, 100000))


class OneShotDetector:
    """The detector before tiling (facetwin 3083c3b): the short-range model on the whole frame, the
    full-range model when it finds nothing. Kept here only to measure the new one against it."""

    def __init__(self, min_score: float = 0.5, min_face: float = 40) -> None:
        self._short = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_score)
        self._full = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = FaceDetector._run(self._short, rgb) or FaceDetector._run(self._full, rgb)
        return sorted(found, key=lambda d: d.size, reverse=True)

    def close(self) -> None:
        self._short.close()
        self._full.close()


@contextlib.contextmanager
def analyser_detector(detector_class: type) -> Iterator[None]:
    """Make ``extract`` build its analyser with ``detector_class`` for the duration of the block."""
    saved = facetwin.faces.analyse.FaceDetector
    facetwin.faces.analyse.FaceDetector = detector_class
    try:
        yield
    finally:
        facetwin.faces.analyse.FaceDetector = saved


def frame_size(video: Path) -> tuple[int, int]:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height


def extract_rate(video: Path, every: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        report = extract([video], Path(scratch) / "set", ExtractOptions(every=every))
        elapsed = time.perf_counter() - start
    return report.results[0].frames / elapsed


def clip_runs(video: Path, runs: int, every: int) -> dict[str, object]:
    """Frames/s of whole extract runs, old and new detector alternating."""
    rates: dict[str, list[float]] = {"new": [], "old": []}
    for _ in range(runs):
        rates["new"].append(extract_rate(video, every))
        with analyser_detector(OneShotDetector):
            rates["old"].append(extract_rate(video, every))
    new, old = statistics.median(rates["new"]), statistics.median(rates["old"])
    return {
        "video": video.name,
        "model_passes_per_frame": {"new": calls_per_frame(*frame_size(video), CARE_FROM), "old": 1},
        "frames_per_s_runs": {key: [round(r, 2) for r in value] for key, value in rates.items()},
        "frames_per_s_median": {"new": round(new, 2), "old": round(old, 2)},
        "new_vs_old": round(new / old, 3),
    }


def stage_times(video: Path, every: int) -> dict[str, float]:
    """Milliseconds per frame for each stage, measured one after another on one thread."""
    detector, landmarker = FaceDetector(), FaceLandmarker()
    totals = dict.fromkeys(("decode", "detect", "landmarks", "align", "encode_png"), 0.0)
    frames = 0
    source = iter(read_frames(MediaSource(video, "video"), every=every))
    while True:
        t0 = time.perf_counter()
        frame = next(source, None)
        t1 = time.perf_counter()
        if frame is None:
            break
        detections = detector.detect(frame.rgb)
        t2 = time.perf_counter()
        points = landmarker.landmarks(frame.rgb, detections[0]) if detections else None
        t3 = time.perf_counter()
        aligned = align_face(frame.rgb, points) if points is not None else None
        if aligned is not None:
            sharpness(aligned.crop)
        t4 = time.perf_counter()
        if aligned is not None:
            cv2.imencode(".png", aligned.crop, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        t5 = time.perf_counter()
        for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            totals[key] += value
        frames += 1
    detector.close()
    landmarker.close()
    return {key: round(1000 * value / frames, 3) for key, value in totals.items()}


def score(detector: FaceDetector | OneShotDetector, frames: list, min_face: float) -> dict[str, object]:
    """Recall, precision, false faces and speed of ``detector`` on labelled ``frames``."""
    hits = misses = false = 0
    by_size = {f"{lo}-{hi if hi < 100000 else ''}": [0, 0] for lo, hi in SIZE_BINS}
    by_kind: dict[str, list[int]] = {}
    missed: list[float] = []
    false_sizes: list[float] = []
    times = []
    for frame in frames:
        start = time.perf_counter()
        found = detector.detect(frame.rgb)
        times.append(time.perf_counter() - start)
        boxes = [d.box for d in found if d.size >= min_face]
        result = match(boxes, frame.faces, CARE_FROM)
        hits, misses, false = hits + result.hits, misses + result.misses, false + result.false
        kind = by_kind.setdefault(frame.kind, [0, 0, 0])
        kind[0], kind[1], kind[2] = kind[0] + result.hits, kind[1] + result.misses, kind[2] + result.false
        missed.extend(result.missed_sizes)
        false_sizes.extend(result.false_sizes)
        for face in frame.faces:
            for lo, hi in SIZE_BINS:
                if lo <= face.size < hi:
                    cell = by_size[f"{lo}-{hi if hi < 100000 else ''}"]
                    cell[1] += 1
                    cell[0] += face.size not in result.missed_sizes
    return {
        "recall": round(hits / max(1, hits + misses), 4),
        "precision": round(hits / max(1, hits + false), 4),
        "false_faces_per_100_frames": round(100 * false / len(frames), 2),
        "faces": hits + misses,
        "recall_by_size_px": {key: round(h / n, 4) if n else None for key, (h, n) in by_size.items()},
        "by_kind": {k: {"recall": round(h / max(1, h + m), 4), "false": f} for k, (h, m, f) in by_kind.items()},
        "missed_sizes_px": sorted(round(s, 1) for s in missed)[:20],
        "false_sizes_px": sorted(round(s, 1) for s in false_sizes)[:20],
        "frames_per_s": round(1 / statistics.median(times), 2),
    }


def detection_quality(count: int, seed: int) -> dict[str, object]:
    labelled = LabelledSet()
    new, old = FaceDetector(min_face=CARE_FROM), OneShotDetector()
    results = {}
    for width, height in SIZES:
        rng = random.Random(f"{seed}-{width}x{height}")
        photos = count * 3 // 10
        frames = [labelled.pasted(rng, width, height) for _ in range(count - photos)]
        frames += [labelled.photo(rng, width, height, index) for index in range(photos)]
        results[f"{width}x{height}"] = {
            "frames": len(frames),
            "model_passes_per_frame": calls_per_frame(width, height, CARE_FROM),
            "new": score(new, frames, CARE_FROM),
            "old": score(old, frames, CARE_FROM),
        }
    new.close()
    old.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--frames", type=int, default=100, help="labelled frames per frame size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-clips", action="store_true", help="no extract runs on the demo clips")
    parser.add_argument("--skip-detection", action="store_true", help="no labelled-set measurement")
    args = parser.parse_args()
    clips = ensure_demo_clips()
    result: dict[str, object] = {
        "benchmark": "extract",
        "every": args.every,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "target_frames_per_s": 40,
    }
    if not args.skip_clips:
        result["cap13"] = clip_runs(clips.cap13, args.runs, args.every)
        rates = [extract_rate(clips.franck, args.every) for _ in range(args.runs)]
        result["franck"] = {
            "frames_per_s_runs": [round(r, 2) for r in rates],
            "frames_per_s_median": round(statistics.median(rates), 2),
            "model_passes_per_frame": calls_per_frame(*frame_size(clips.franck), CARE_FROM),
        }
        stages = stage_times(clips.franck, args.every)
        result["stages_ms_per_frame_single_thread"] = stages
        result["stages_sum_ms"] = round(sum(stages.values()), 3)
    if not args.skip_detection:
        result["detection"] = detection_quality(args.frames, args.seed)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
