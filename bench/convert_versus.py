"""Convert speed of this checkout against another one (say the base commit), measured side by side.

On a shared machine the load changes from minute to minute, so the two versions are run alternately,
each full ``convert`` in a fresh process (decode, gate, detect, swap, paste, encode, sign), on the same
inputs and model: cap13_edit2.mp4 (400x300) and a 1280x720 clip made from it (cap13 scaled up, tagged
BT.709, as HD footage is). Prints JSON: frames/s (wall) and CPU milliseconds a frame of every run, and
the medians.

    git archive BASE | tar -x -C /tmp/base      # the other checkout
    .venv/bin/python bench/convert_versus.py --other /tmp/base/src --model-dir out/model [--rounds 3] [--restore both]

Without ``--model-dir`` it trains a throwaway model first (bench/convert.py's), which is enough: speed
does not depend on how well the model is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2

from facetwin.demo_data import ensure_demo_clips

HERE = Path(__file__).resolve().parents[1] / "src"
RUN = """
import json, sys, time
from pathlib import Path
from facetwin.convert.run import convert
from facetwin.options import BlendOptions, ConvertOptions
start = time.perf_counter()
options = ConvertOptions(direction="b2a", blend=BlendOptions(restore=sys.argv[4]))
report = convert(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), options)
print(json.dumps({"frames": report.frames, "seconds": time.perf_counter() - start}))
"""


def hd_clip(source: Path, target: Path, frames: int) -> Path:
    """``frames`` frames of ``source`` scaled to 1280x720, H.264 tagged BT.709."""
    with av.open(str(source)) as container, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        context = stream.codec_context
        context.color_primaries = context.color_trc = context.colorspace = 1
        context.color_range = 1
        stream.options = {"crf": "18"}
        for index, frame in enumerate(container.decode(video=0)):
            if index == frames:
                break
            big = cv2.resize(frame.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_CUBIC)
            made = av.VideoFrame.from_ndarray(big, format="rgb24").reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            made.pts, made.time_base = index, Fraction(1, 25)
            for packet in stream.encode(made):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def run_once(src: Path, video: Path, model_dir: Path, output: Path, restore: str = "none") -> tuple[float, float]:
    """frames/s of wall time, and CPU milliseconds a frame (user + system of the whole process, start-up
    included: less swayed by other people's load on a shared machine than wall time)."""
    env = {**os.environ, "PYTHONPATH": str(src), "FACETWIN_CONFIG_DIR": str(output.parent / "config")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-c", RUN, str(video), str(model_dir), str(output), restore], env=env,
                            capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return measured["frames"] / measured["seconds"], 1000 * cpu / measured["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", type=Path, required=True, help="the other checkout's src folder")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hd-frames", type=int, default=100)
    parser.add_argument("--only", choices=("cap13_400x300", "hd_1280x720"), help="measure one clip only")
    parser.add_argument("--restore", default="none", choices=("none", "eyes", "mouth", "both"), help="convert --restore in both versions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.model_dir is None:
            sys.path.insert(0, str(Path(__file__).parent))
            from convert import throwaway_model

            args.model_dir = throwaway_model(scratch)
        clips = {"cap13_400x300": ensure_demo_clips().cap13, "hd_1280x720": hd_clip(ensure_demo_clips().cap13, scratch / "hd.mp4", args.hd_frames)}
        clips = {name: path for name, path in clips.items() if args.only in (None, name)}
        versions = {"this": HERE, "other": args.other.resolve()}
        rates: dict[str, dict[str, list[float]]] = {clip: {v: [] for v in versions} for clip in clips}
        cpu: dict[str, dict[str, list[float]]] = {clip: {v: [] for v in versions} for clip in clips}
        for _ in range(args.rounds):
            for clip, video in clips.items():
                for version, src in versions.items():
                    rate, cpu_ms = run_once(src, video, args.model_dir, scratch / f"{version}.mp4", args.restore)
                    rates[clip][version].append(rate)
                    cpu[clip][version].append(cpu_ms)
    print(json.dumps({
        "benchmark": "convert_versus",
        "this": str(HERE), "other": str(versions["other"]), "cpu_count": os.cpu_count(), "rounds": args.rounds, "restore": args.restore,
        **{clip: {"frames_per_s_runs": {v: [round(r, 2) for r in runs] for v, runs in by.items()},
                  "frames_per_s_median": {v: round(statistics.median(runs), 2) for v, runs in by.items()},
                  "cpu_ms_per_frame_runs": {v: [round(r, 1) for r in runs] for v, runs in cpu[clip].items()},
                  "cpu_ms_per_frame_median": {v: round(statistics.median(runs), 1) for v, runs in cpu[clip].items()}}
           for clip, by in rates.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
