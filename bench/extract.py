"""Extraction speed on the whole of franck.mp4 (4,800 frames, 360x288): frames/s and where time goes.

Prints JSON. ``runs`` are full ``facetwin extract`` runs (decode, detect, landmarks, align, PNG + SQLite
write) into fresh face sets; the median is the figure to quote. ``stages`` comes from one extra,
single-threaded pass that times each stage of the same per-frame work separately.

    .venv/bin/python bench/extract.py [--runs 3] [--every 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import ExtractOptions, extract
from facetwin.faces.align import align_face, sharpness
from facetwin.faces.detect import FaceDetector
from facetwin.faces.landmarks import FaceLandmarker
from facetwin.media import MediaSource, read_frames


def full_runs(video: Path, runs: int, every: int) -> list[float]:
    rates = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            report = extract([video], Path(scratch) / "set", ExtractOptions(every=every))
            elapsed = time.perf_counter() - start
            rates.append(report.results[0].frames / elapsed)
    return rates


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
    return {key: round(1000 * value / frames, 3) for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    video = ensure_demo_clips().franck
    rates = full_runs(video, args.runs, args.every)
    stages = stage_times(video, args.every)
    result = {
        "benchmark": "extract",
        "video": video.name,
        "every": args.every,
        "machine": {"cpu_count": __import__("os").cpu_count(), "processor": platform.processor() or platform.machine()},
        "frames_per_s_runs": [round(r, 2) for r in rates],
        "frames_per_s_median": round(statistics.median(rates), 2),
        "target_frames_per_s": 40,
        "stages_ms_per_frame_single_thread": stages,
        "stages_sum_ms": round(sum(stages.values()), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
