"""``facetwin evaluate``: the held-out metrics, optionally a converted clip, written as JSON and HTML."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from facetwin.choice import choose_faces
from facetwin.curves import plot_losses
from facetwin.evaluate.clip import evaluate_clip
from facetwin.evaluate.report import write_report
from facetwin.faces.identity import FaceEmbedder
from facetwin.modeldir import ModelDir
from facetwin.options import EvaluateOptions
from facetwin.scoring.held_out import HeldOutEvaluator, HeldOutReport
from facetwin.swapper import Swapper


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def score_model(model_dir: ModelDir, options: EvaluateOptions, embedder: FaceEmbedder) -> HeldOutReport:
    """Every held-out figure of the folder's newest checkpoint, in the model's own frame."""
    swapper = Swapper(model_dir, options.device)
    evaluator = HeldOutEvaluator.for_model_dir(model_dir, swapper.spec, limit=options.faces, identity=True,
                                               expression=True, embedder=embedder)  # fmt: skip
    return evaluator.evaluate(swapper.model, swapper.device, swapper.dtype, swapper.model_id, swapper.iteration)


def evaluate(model_dir: Path, out: Path, options: EvaluateOptions = EvaluateOptions(),
             clip: tuple[Path, Path] | None = None, restored: tuple[int, int, int] | None = None) -> tuple[dict[str, Any], Path]:
    """Evaluate a trained model on up to ``options.faces`` held-out faces per identity, and with ``clip``
    (a source video and its conversion by this model in ``options.direction``) the converted clip;
    ``restored``: (faces ``--restore`` acted on, faces swapped, faces whose parted lips it closed) in that
    conversion, recorded with it.
    Returns the metrics and the report's path. ``facetwin.pipeline.evaluate_model`` converts first."""
    folder = ModelDir(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    embedder = FaceEmbedder()
    held = score_model(folder, options, embedder)
    metrics: dict[str, Any] = {"held_out": held.to_json()}
    if clip is not None:
        video, converted = clip
        target, source = ("b", "a") if options.direction == "a2b" else ("a", "b")
        choice = choose_faces(folder, options.direction, embedder, options.identity, options.all_faces)
        measured = evaluate_clip(video, converted, held.centroids[target], held.centroids[source], embedder, choice)
        metrics["clip"] = {"source": str(video), "converted": str(converted), "direction": options.direction,
                           "restore": options.restore, **asdict(measured)}
        if restored is not None:
            metrics["clip"]["restored_faces"], metrics["clip"]["swapped_faces"], metrics["clip"]["lips_closed_faces"] = restored
    losses = None
    if folder.losses_csv.is_file():  # a model without a training log still gets the rest
        try:
            losses = plot_losses(folder, out / "losses.png")
        except ValueError:  # a log with no steps in it yet
            losses = None
    metrics = _clean(metrics)
    return metrics, write_report(out, metrics, held.grid, losses)
