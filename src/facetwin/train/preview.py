"""Training previews and loss plots: what a person looks at to judge a run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from facetwin.devices import to_model_input
from facetwin.models.base import SwapModel
from facetwin.media import write_image
from facetwin.sheets import grid

PREVIEW_FACES = 4
COLUMNS = ("A", "A rebuilt", "A as B", "B", "B rebuilt", "B as A")


def _to_images(batch: torch.Tensor) -> list[np.ndarray]:
    array = (batch.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return list(array.transpose(0, 2, 3, 1))


@torch.no_grad()
def write_preview(model: SwapModel, held_out: dict[str, dict[str, torch.Tensor]], device: torch.device, path: Path) -> Path:
    """A grid, one held-out face per row: A, A rebuilt, A as B, B, B rebuilt, B as A."""
    was_training = model.training
    model.eval()
    columns = []
    for side, other in (("a", "b"), ("b", "a")):
        source = to_model_input(held_out[side]["source"][:PREVIEW_FACES], device)
        columns.append(_to_images(source))
        columns.append(_to_images(model(source, side)[0]))
        columns.append(_to_images(model(source, other)[0]))
    model.train(was_training)
    rows = min(len(column) for column in columns)
    tiles = [columns[c][r] for r in range(rows) for c in range(len(columns))]
    labels = [COLUMNS[c] for r in range(rows) for c in range(len(columns))]
    return write_image(path, grid(tiles, columns=len(columns), tile=128, labels=labels))


def plot_losses(model_dir: Path, path: Path | None = None) -> Path:
    """Draw losses.csv (training losses, smoothed, and held-out L1) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = model_dir / "losses.csv"
    if not log.is_file():
        raise FileNotFoundError(f"{log}: no training log yet")
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{log}: the log is empty")
    held_rows = rows
    rows = [r for r in rows if r.get("loss_a")]
    if not rows:
        raise ValueError(f"{log}: no training steps logged yet")
    steps = np.array([int(r["iteration"]) for r in rows])
    quality_log = model_dir / "quality.csv"
    quality: list[dict[str, str]] = []
    if quality_log.is_file():
        with open(quality_log, newline="") as handle:
            quality = list(csv.DictReader(handle))
    figure, axes = plt.subplots(1, 3 if quality else 2, figsize=(18 if quality else 12, 4.5))
    left, right = axes[0], axes[1]
    for side, colour in (("a", "tab:blue"), ("b", "tab:orange")):
        values = np.array([float(r[f"loss_{side}"]) for r in rows])
        window = max(1, len(values) // 50)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        left.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        left.plot(steps[window - 1 :], smooth, color=colour, label=f"train loss {side.upper()}")
        held = [(int(r["iteration"]), float(r[f"heldout_l1_{side}"])) for r in held_rows if r.get(f"heldout_l1_{side}")]
        if held:
            right.plot(*zip(*held), marker="o", color=colour, label=f"held-out L1 {side.upper()}")
    left.set(xlabel="iteration", ylabel="loss", title="training loss", yscale="log")
    right.set(xlabel="iteration", ylabel="masked L1", title="held-out reconstruction")
    if quality:  # train --evaluate-every: does the swap look more like its target?
        its = [int(r["iteration"]) for r in quality]
        for swap, colour in (("a2b", "tab:orange"), ("b2a", "tab:blue")):
            axes[2].plot(its, [float(r[f"identity_{swap}"]) for r in quality], marker="o", color=colour,
                         label=f"{swap[0].upper()}→{swap[2].upper()}: distance to target identity")
        axes[2].axhline(0.6, color="grey", linestyle="--", linewidth=1, label="dlib same-person threshold")
        axes[2].set(xlabel="iteration", ylabel="dlib embedding distance", title="swap identity (held-out faces)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    target = path or model_dir / "losses.png"
    partial = target.with_name(target.name + ".part.png")
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    partial.replace(target)
    return target
