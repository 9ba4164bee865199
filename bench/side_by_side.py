"""Extract and convert frames/s of this tree against another commit's, in the same run, on cap13 and on
a 1080p clip.

The other commit's ``src`` is exported with ``git archive`` into a scratch folder; each measurement is
one ``extract`` or ``convert`` call in a fresh subprocess whose PYTHONPATH picks the tree, and the two
trees alternate (base, this, base, this, ...) so that both see the same machine load. Prints JSON: the
frames/s of every run, the medians, and this tree's median over the base's.

Clips: cap13_edit2.mp4 (the first ``--seconds``, 400x300, one face), and the same seconds scaled to
1440x1080 and centred in a 1920x1080 frame (the face ~500 px). Convert uses a throwaway ``original``
model trained for 20 iterations on the demo faces (speed does not depend on training), ``--direction
b2a``; this tree's first conversion, which computes the model's people.json once, is not timed.

    PYTHONPATH=src .venv/bin/python bench/side_by_side.py --base 7b5297f [--runs 3] [--seconds 12] [--hd-seconds 3]
        [--jobs extract,convert] [--skip-hd]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

WORKER = """
import json, sys, time
from pathlib import Path
job, clip, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if job == "extract":
    from facetwin.extract import extract
    try:
        from facetwin.options import ExtractOptions
    except ImportError:  # trees before the options module (3083c3b)
        from facetwin.extract import ExtractOptions
    start = time.perf_counter()
    report = extract([clip], out, ExtractOptions())
    seconds = time.perf_counter() - start
    frames = sum(r.frames for r in report.results)
else:
    from facetwin.convert.run import convert
    try:
        from facetwin.options import ConvertOptions
    except ImportError:
        from facetwin.convert.run import ConvertOptions
    start = time.perf_counter()
    report = convert(clip, Path(sys.argv[4]), out, ConvertOptions(direction="b2a"))
    seconds = time.perf_counter() - start
    frames = report.frames
print(json.dumps({"frames": frames, "seconds": seconds}))
"""


def cut(source: Path, target: Path, seconds: float, size: tuple[int, int] | None = None) -> Path:
    """The first ``seconds`` of ``source`` re-encoded (H.264), scaled and centred into ``size`` when given."""
    with av.open(str(source)) as container, av.open(str(target), "w") as out:
        stream = container.streams.video[0]
        width, height = size or (stream.width, stream.height)
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i, frame in enumerate(container.decode(stream)):
            if i >= seconds * 25:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if size is not None:
                scale = height / rgb.shape[0]
                scaled = cv2.resize(rgb, (round(rgb.shape[1] * scale), height), interpolation=cv2.INTER_CUBIC)
                canvas = np.zeros((height, width, 3), np.uint8)
                x0 = (width - scaled.shape[1]) // 2
                canvas[:, x0 : x0 + scaled.shape[1]] = scaled
                rgb = canvas
            copy = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            copy.pts, copy.time_base = i, Fraction(1, 25)
            for packet in video.encode(copy):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return target


def run(tree: Path, job: str, clip: Path, out: Path, model: Path | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    args = [sys.executable, "-c", WORKER, job, str(clip), str(out)] + ([str(model)] if model else [])
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        raise SystemExit(f"{tree} {job} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return float(measured["frames"] / measured["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="7b5297f", help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds of cap13")
    parser.add_argument("--hd-seconds", type=float, default=3.0, help="seconds of the 1080p clip")
    parser.add_argument("--skip-hd", action="store_true")
    parser.add_argument("--jobs", default="extract,convert", help="extract, convert or both (a base whose model folder"
                        " format differs can only be compared on extract)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from facetwin.demo_data import ensure_demo_clips

    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        base = scratch / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees = {"base": base, "this": ROOT}
        sd = cut(clips.cap13, scratch / "cap13.mp4", args.seconds)
        hd = None if args.skip_hd else cut(clips.cap13, scratch / "cap13_1080p.mp4", args.hd_seconds, (1920, 1080))
        sys.path.insert(0, str(HERE))
        from convert import throwaway_model  # bench/convert.py

        jobs = args.jobs.split(",")
        model = scratch / "model"
        if "convert" in jobs:
            throwaway_model(scratch)
            run(ROOT, "convert", sd, scratch / "warm.mp4", model)  # people.json, once
        results: dict[str, dict[str, list[float]]] = {}
        for index in range(args.runs):
            for clip_name, clip in (("cap13", sd), ("1080p", hd)):
                if clip is None:
                    continue
                for job in jobs:
                    for name, tree in trees.items():
                        out = scratch / f"{name}_{job}_{clip_name}_{index}" / ("set" if job == "extract" else "out.mp4")
                        fps = run(tree, job, clip, out, model if job == "convert" else None)
                        results.setdefault(f"{job} {clip_name}", {}).setdefault(name, []).append(round(fps, 3))
                        print(f"run {index + 1} {job} {clip_name} {name}: {fps:.2f} frames/s", file=sys.stderr)
        summary = {
            key: {"median_fps": {n: statistics.median(v) for n, v in by_tree.items()},
                  "this_over_base": round(statistics.median(by_tree["this"]) / statistics.median(by_tree["base"]), 3),
                  "runs": by_tree}
            for key, by_tree in results.items()
        }  # fmt: skip
        print(json.dumps({"base": args.base, "seconds": args.seconds, "hd_seconds": args.hd_seconds,
                          "time": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg(), **summary}, indent=2))


if __name__ == "__main__":
    main()
