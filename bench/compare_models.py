"""``original``, ``lightweight`` and ``masked128`` at equal training time on this machine, on held-out faces.

Each model trains for the same wall-clock minutes on the same demo face sets (same seed, so the same
held-out faces), in its ``auto`` precision. They see different crops (62.5 % and 75 % of the
aligned face) at different sizes (64 and 128 px), so all are scored in one common frame: the
original's 62.5 % region of the aligned crop at 128 px, inside the landmark face hull. The 64 px
models' output is upscaled into it; masked128's is cut to it. Prints JSON with L1, PSNR and SSIM per identity.

    .venv/bin/python bench/compare_models.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    clips = ensure_demo_clips()
    results: dict[str, object] = {"benchmark": "compare_models", "minutes_each": args.minutes, "cpu_count": os.cpu_count(),
                                  "eval": f"{EVAL_COVERAGE:.0%} region at {EVAL_SIZE} px, inside the face hull"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        a, b = scratch / "A", scratch / "B"
        extract([clips.franck], a, ExtractOptions(every=5, max_faces=1))
        extract([clips.cap12, clips.cap13], b, ExtractOptions(every=2, max_faces=1))
        for name in ("original", "lightweight", "masked128"):
            config = TrainConfig(str(a), str(b), model=name, batch_size=args.batch_size, seed=0)
            run = train(scratch / name, config, RunOptions(minutes=args.minutes, save_every=10**6, preview_every=10**6))
            results[name] = {"iterations": run.iteration, "heldout": score(scratch / name, config)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
