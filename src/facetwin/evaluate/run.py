"""``facetwin evaluate``: the held-out metrics, optionally a converted clip, written as JSON and HTML."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from facetwin.convert.run import ConvertOptions, convert
from facetwin.evaluate.clip import evaluate_clip
from facetwin.evaluate.held_out import HeldOutReport, evaluate_held_out
from facetwin.evaluate.identity import FaceEmbedder
from facetwin.evaluate.report import write_report
from facetwin.train.preview import plot_losses


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def evaluate(model_dir: Path, out: Path, video: Path | None = None, direction: str = "a2b", device: str = "auto",
             progress: Any = None, faces: int = 64) -> tuple[dict[str, Any], Path]:
    """Evaluate a trained model on up to `faces` held-out faces per identity; returns the metrics and the
    report's path."""
    out.mkdir(parents=True, exist_ok=True)
    embedder = FaceEmbedder()
    held: HeldOutReport = evaluate_held_out(model_dir, device, limit=faces, embedder=embedder)
    metrics: dict[str, Any] = {"held_out": held.to_json()}
    if video is not None:
        converted = out / f"converted_{video.stem}.mp4"
        convert(video, model_dir, converted, ConvertOptions(direction=direction, device=device), progress)
        target, source = ("b", "a") if direction == "a2b" else ("a", "b")
        clip = evaluate_clip(video, converted, held.centroids[target], held.centroids[source], embedder)
        metrics["clip"] = {"source": str(video), "converted": str(converted), "direction": direction, **asdict(clip)}
    losses = None
    if (model_dir / "losses.csv").is_file():  # a model without a training log still gets the rest
        try:
            losses = plot_losses(model_dir, out / "losses.png")
        except ValueError:  # a log with no steps in it yet
            losses = None
    metrics = _clean(metrics)
    return metrics, write_report(out, metrics, held.grid, losses)
