"""A model folder's curves as a picture: training losses, held-out reconstruction and swap identity.

Reads losses.csv and quality.csv (facetwin.modeldir), so ``facetwin train --plot``, ``facetwin
evaluate``, the demo and the studio draw the same picture.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from facetwin.modeldir import ModelDir


def plot_losses(model_dir: Path | ModelDir, path: Path | None = None) -> Path:
    """Draw losses.csv (training losses, smoothed, and held-out L1), and quality.csv where there is one,
    to a PNG (default: losses.png in the model folder). Raises FileNotFoundError without a log, and
    ValueError for a log with no steps yet."""
    folder = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = folder.losses_csv
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
    quality_log = folder.quality_csv
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
    target = path or folder.root / "losses.png"
    partial = target.with_name(target.name + ".part.png")
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    partial.replace(target)
    return target
