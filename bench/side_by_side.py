"""Extract and convert frames/s, and training iterations/s, of this tree (or ``--this`` commit) against
another commit's, in the same run, on cap13 and on a 1080p clip.

The other commit's ``src`` is exported with ``git archive`` into a scratch folder; each measurement is
one ``extract``, ``convert`` or ``train`` call in a fresh subprocess whose PYTHONPATH picks the tree, and
the two trees alternate (base, this, base, this, ...) so that both see the same machine load. Prints
JSON: the rate of every run, the medians, and this tree's median over the base's.

``train``: ``--train-iterations`` of ``original`` at batch 16, seed 0, one DataLoader worker, on face sets
of franck and cap12 (every 10th frame) that each tree extracts for itself; the rate is one over the
median step time (the trainer's ``on_step`` stamps, leaving out the first five steps and the last, which
also scores the held-out faces, writes a preview and saves). Not per clip: it runs once per round.

``lockstep``: the same training in both trees at once, in strict alternation: a tree runs one step, hands
a baton to the other (a byte through a pipe) and waits for it back, so step k of each tree sees the same
machine within seconds. On this VM, separate runs of the same tree drift by 15 % over minutes, more than
the difference sought; paired steps do not. No DataLoader worker (its prefetching would run during the
other tree's step), so a step is data, forward, backward and logging. Reports one over each step's time,
and the median of the paired ratios (this tree's rate over the base's, step k against step k) with a 95 %
bootstrap interval.

Clips: cap13_edit2.mp4 (the first ``--seconds``, 400x300, one face), and the same seconds scaled to
1440x1080 and centred in a 1920x1080 frame (the face ~500 px). Convert uses a throwaway ``original``
model trained for 20 iterations on the demo faces (speed does not depend on training), ``--direction
b2a``; this tree's first conversion, which computes the model's people.json once, is not timed.

    PYTHONPATH=src .venv/bin/python bench/side_by_side.py --base 7b5297f [--this COMMIT] [--runs 3] [--seconds 12]
        [--hd-seconds 3] [--jobs extract,convert,train,lockstep] [--train-iterations 60] [--skip-hd]

A base whose model folder format is older than this tree's: convert uses a model that the base trains
(each tree gets its own copy; this tree's first conversion, which migrates it, is not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
if job in ("train", "model", "lockstep"):
    try:
        from facetwin.options import ExtractOptions, RunOptions, TrainConfig
    except ImportError:  # trees before the options module (3083c3b)
        from facetwin.extract import ExtractOptions
        from facetwin.train.trainer import RunOptions, TrainConfig
    from facetwin.demo_data import ensure_demo_clips
    from facetwin.extract import extract
    from facetwin.train.trainer import train
    clips, sets = ensure_demo_clips(), out.parent / "sets"
    if not sets.exists():
        extract([clips.franck], sets / "a", ExtractOptions(every=10, max_faces=1))
        extract([clips.cap12], sets / "b", ExtractOptions(every=10, max_faces=1))
    iterations = int(sys.argv[4])
    config = TrainConfig(str(sets / "a"), str(sets / "b"), model="original", batch_size=8 if job == "model" else 16)
    stamps, steps = [], []
    if job == "lockstep":  # one step, then hand the baton to the other tree and wait for it back
        import os
        baton_in, baton_out, started = int(sys.argv[5]), int(sys.argv[6]), [time.perf_counter()]
        def pass_baton():
            try:
                os.write(baton_out, b"x")
            except BrokenPipeError:  # the other tree has ended (or failed): go on alone
                pass
        def on_step(step, losses):
            steps.append(time.perf_counter() - started[0])
            if step > 1 or sys.argv[7] == "first" or step == iterations:
                pass_baton()
            if step < iterations:
                os.read(baton_in, 1)  # b"" at once when the other tree has ended
            started[0] = time.perf_counter()
    else:
        on_step = lambda step, losses: stamps.append(time.perf_counter())
    train(out, config, RunOptions(iterations=iterations, save_every=iterations, preview_every=10**6,
                                  workers=0 if job == "lockstep" else 1), on_step=on_step)
    if job == "lockstep":
        print(json.dumps({"steps": steps[5:-1]}))  # not the first five, nor the last (it scores and saves)
        sys.exit(0)
    steps = [b - a for a, b in zip(stamps[4:-1], stamps[5:-1])]  # not the first five, nor the last (it scores)
    frames, seconds = 1, sorted(steps)[len(steps) // 2]
elif job == "extract":
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


def run(tree: Path, job: str, clip: Path, out: Path, model: Path | str | int | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    args = [sys.executable, "-c", WORKER, job, str(clip), str(out)] + ([str(model)] if model else [])
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        raise SystemExit(f"{tree} {job} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return float(measured["frames"] / measured["seconds"])


def lockstep(trees: dict[str, Path], scratch: Path, clip: Path, iterations: int) -> dict[str, list[float]]:
    """Both trees train at once in step-by-step alternation: each runs one step while the other waits
    (a baton passed through two pipes), so consecutive steps of the two see the same machine. Seconds of
    each step (data, step, logging; no DataLoader worker), leaving out the first five and the last."""
    read_base, write_base = os.pipe()
    read_this, write_this = os.pipe()
    fds = {"base": (read_base, write_this), "this": (read_this, write_base)}
    processes = {}
    for name, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        baton_in, baton_out = fds[name]
        args = [sys.executable, "-c", WORKER, "lockstep", str(clip), str(scratch / f"train_{name}" / "model_lockstep"),
                str(iterations), str(baton_in), str(baton_out), "first" if name == "base" else "second"]  # fmt: skip
        processes[name] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                           pass_fds=(baton_in, baton_out))  # fmt: skip
    for fd in (read_base, write_base, read_this, write_this):
        os.close(fd)  # only the two trees hold the pipes: if one dies, the other reads EOF instead of hanging
    steps = {}
    for name, process in processes.items():
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{trees[name]} lockstep training failed:\n{err[-3000:]}")
        steps[name] = json.loads(out.strip().splitlines()[-1])["steps"]
    return steps


def export(commit: str, folder: Path) -> Path:
    """``commit``'s src exported into ``folder`` (git archive)."""
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="7b5297f", help="the commit to compare with")
    parser.add_argument("--this", default=None, help="a commit to measure instead of the working tree")
    parser.add_argument("--train-iterations", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds of cap13")
    parser.add_argument("--hd-seconds", type=float, default=3.0, help="seconds of the 1080p clip")
    parser.add_argument("--skip-hd", action="store_true")
    parser.add_argument("--jobs", default="extract,convert", help="any of extract, convert, train, lockstep (comma-separated)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from facetwin.demo_data import ensure_demo_clips

    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        trees = {"base": export(args.base, scratch / "base"), "this": ROOT if args.this is None else export(args.this, scratch / "this")}
        sd = cut(clips.cap13, scratch / "cap13.mp4", args.seconds)
        hd = None if args.skip_hd else cut(clips.cap13, scratch / "cap13_1080p.mp4", args.hd_seconds, (1920, 1080))

        jobs = args.jobs.split(",")
        models = {name: scratch / f"model_{name}" for name in trees}
        if "convert" in jobs:
            # a model in the base's format (the newer tree must open it) when both trees can train one
            run(trees["base"], "model", sd, scratch / "trained" / "model", 20)
            for name in trees:
                shutil.copytree(scratch / "trained" / "model", models[name])
                run(trees[name], "convert", sd, scratch / f"warm_{name}.mp4", models[name])  # migration, people.json
        results: dict[str, dict[str, list[float]]] = {}
        lockstep_paired, lockstep_interval = float("nan"), [float("nan")] * 2
        if "lockstep" in jobs:
            for name, tree in trees.items():  # face sets extracted (and the imports warmed) before the race
                run(tree, "model", sd, scratch / f"train_{name}" / "model_warm", 8)
            seconds = lockstep(trees, scratch, sd, args.train_iterations)
            paired = [b / t for b, t in zip(seconds["base"], seconds["this"])]  # this tree's rate over the base's
            results["lockstep"] = {name: [round(1 / s, 4) for s in values] for name, values in seconds.items()}
            lockstep_paired = round(statistics.median(paired), 3)
            draw = random.Random(0)  # 95 % bootstrap interval of that median
            medians = sorted(statistics.median(draw.choices(paired, k=len(paired))) for _ in range(2000))
            lockstep_interval = [round(medians[50], 3), round(medians[1949], 3)]
            print(f"lockstep: median step {statistics.median(seconds['base']):.3f} s (base) against"
                  f" {statistics.median(seconds['this']):.3f} s (this); median paired rate ratio {lockstep_paired}",
                  file=sys.stderr)  # fmt: skip
            jobs = [job for job in jobs if job != "lockstep"]
        for index in range(args.runs):
            for job in jobs:
                for clip_name, clip in (("cap13", sd), ("1080p", hd)) if job != "train" else (("demo sets", sd),):
                    if clip is None:
                        continue
                    for name, tree in trees.items():
                        out = scratch / f"{name}_{job}_{clip_name}_{index}" / {"extract": "set", "convert": "out.mp4"}.get(job, "model")
                        extra = models[name] if job == "convert" else args.train_iterations if job == "train" else None
                        if job == "train":  # each tree trains on the face sets it extracted itself
                            out = scratch / f"train_{name}" / f"model_{index}"
                        rate = run(tree, job, clip, out, extra)
                        results.setdefault(f"{job} {clip_name}", {}).setdefault(name, []).append(round(rate, 3))
                        unit = "iterations/s" if job == "train" else "frames/s"
                        print(f"run {index + 1} {job} {clip_name} {name}: {rate:.2f} {unit}", file=sys.stderr)
        summary = {
            key: {"median_per_s": {n: statistics.median(v) for n, v in by_tree.items()},
                  "this_over_base": round(statistics.median(by_tree["this"]) / statistics.median(by_tree["base"]), 3),
                  "runs": by_tree}
            for key, by_tree in results.items()
        }  # fmt: skip
        if "lockstep" in summary:
            summary["lockstep"]["paired_this_over_base"] = lockstep_paired  # the figure to quote
            summary["lockstep"]["paired_95_percent_interval"] = lockstep_interval
        print(json.dumps({"base": args.base, "this": args.this or "working tree", "seconds": args.seconds, "hd_seconds": args.hd_seconds,
                          "time": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg(), **summary}, indent=2))


if __name__ == "__main__":
    main()
