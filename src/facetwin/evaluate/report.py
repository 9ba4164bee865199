"""The evaluation report: metrics.json for machines, one self-contained HTML page (plots inlined) for people."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.atomic import write_json_atomically
from facetwin.media import write_image
from facetwin.scoring.expression import CLOSED_FRACTION
from facetwin.sheets import grid as image_grid


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _bars(metrics: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    identity = metrics["held_out"]["identity"]
    groups = [g for g in ("real_a", "b2a", "real_b", "a2b") if g in identity]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(groups))
    left.bar(x - 0.2, [identity[g]["to_target"] for g in groups], 0.4, label="to target identity")
    left.bar(x + 0.2, [identity[g]["to_source"] for g in groups], 0.4, label="to the other identity")
    left.axhline(0.6, color="grey", linestyle="--", linewidth=1, label="dlib same-person threshold")
    left.set_xticks(x, [g.replace("real_", "real ").replace("2", "→").upper() for g in groups])
    left.set_ylabel("mean embedding distance")
    left.set_title("Identity: lower 'to target' is better")
    left.legend(fontsize=8)
    recon = metrics["held_out"]["reconstruction"]
    right.bar([f"{s.upper()} SSIM" for s in recon], [recon[s]["ssim"] for s in recon], color="tab:green")
    right.set_ylim(0, 1)
    twin = right.twinx()
    twin.plot([f"{s.upper()} SSIM" for s in recon], [recon[s]["psnr"] for s in recon], "o", color="tab:red")
    twin.set_ylabel("PSNR dB (dots)")
    right.set_title("Held-out reconstruction inside the face mask")
    figure.tight_layout()
    encoded = _png(figure)
    plt.close(figure)
    return encoded


def _expression_plot(series: dict[str, list[float | None]]) -> str:
    """Eye openness and mouth openness of the source and the swap over the clip's frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    axes[0].axhline(CLOSED_FRACTION, color="grey", linestyle="--", linewidth=0.8, label="closed below")
    labels = (("eye_openness", "eye openness\n(more closed eye,\nof its open level)"), ("mouth_open", "mouth open\n(inter-ocular)"))
    for axis, (feature, label) in zip(axes, labels, strict=True):
        for side, colour in (("source", "tab:blue"), ("swap", "tab:orange")):
            values = [np.nan if v is None else v for v in series.get(f"{side}_{feature}", [])]
            axis.plot(values, color=colour, linewidth=1, label=side)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right")
    axes[1].set_xlabel("frame")
    axes[0].set_title("Does the swap blink and speak when the source does?")
    figure.tight_layout()
    encoded = _png(figure)
    plt.close(figure)
    return encoded


def _faces_grid(grid: dict[str, np.ndarray], path: Path) -> str:
    rows = []
    for side in ("a", "b"):
        for triple in grid.get(side, []):
            rows.extend(np.clip(triple * 255 + 0.5, 0, 255).astype(np.uint8))
    picture = image_grid(rows, columns=6, tile=96)
    write_image(path, picture)
    return base64.b64encode(path.read_bytes()).decode()


def _table(title: str, rows: dict[str, dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = sorted({k for row in rows.values() for k in row})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = ""
    for name, row in rows.items():
        cells = "".join(f"<td>{_fmt(row.get(k))}</td>" for k in keys)
        body += f"<tr><th>{html.escape(name)}</th>{cells}</tr>"
    return f"<h2>{html.escape(title)}</h2><table><tr><th></th>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def write_report(out: Path, metrics: dict[str, Any], grid: dict[str, np.ndarray], losses_png: Path | None) -> Path:
    """Write metrics.json, faces.png and report.html into `out`; return the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / "metrics.json", metrics)
    faces = _faces_grid(grid, out / "faces.png")
    held = metrics["held_out"]
    parts = [
        f"<h1>facetwin evaluation: {html.escape(held['model_id'])}</h1>",
        "<p>Held-out faces are whole one-second segments that training never saw (the model's own split; training"
        f" also kept a second away from each). Reconstruction is scored in: {html.escape(str(held.get('frame', '')))}.</p>",
        f"<img alt='metric bars' src='data:image/png;base64,{_bars(metrics)}'>",
        _table("Reconstruction (A→A, B→B), inside the face mask", held["reconstruction"]),
        _table("Identity (dlib embeddings; real faces as the reference rows)", held["identity"]),
        _table("Expression and pose kept by the swap", held["expression"]),
    ]
    if metrics.get("clip"):
        clip = metrics["clip"]
        skip = ("identity", "source", "expression", "expression_series")
        parts.append(_table(f"Converted clip: {clip['source']}", {"clip": {k: v for k, v in clip.items() if k not in skip}}))
        if clip.get("identity"):
            parts.append(_table("Identity of the swapped faces in the clip", {"clip": clip["identity"]}))
        if clip.get("expression"):
            follow = clip["expression"]
            parts.append(_table("Expression followed, frame by frame (correlation and mean absolute error, source against swap)",
                                {"correlation": follow["correlation"], "mean abs error": follow["mean_abs_error"]}))
            parts.append(f"<p>Blinks: {follow['reproduced_blinks']} of the source's {follow['source_blinks']} reproduced by the swap.</p>")
        if clip.get("expression_series"):
            parts.append(f"<img alt='expression over time' src='data:image/png;base64,{_expression_plot(clip['expression_series'])}'>")
    if losses_png is not None and losses_png.is_file():
        parts.append(f"<h2>Training</h2><img alt='loss curves' src='data:image/png;base64,{base64.b64encode(losses_png.read_bytes()).decode()}'>")
    parts.append(f"<h2>Held-out faces</h2><p>Each triple: source, rebuilt by its own decoder, swapped. A rows first, then B.</p>"
                 f"<img alt='faces' src='data:image/png;base64,{faces}' style='image-rendering:pixelated;width:720px'>")
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    page = f"<!doctype html><meta charset='utf-8'><title>facetwin evaluation</title><style>{style}</style>{''.join(parts)}"
    target = out / "report.html"
    partial = out / ".report.html.partial"
    partial.write_text(page)
    partial.replace(target)
    return target
