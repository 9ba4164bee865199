"""What the training page shows of a model folder: its curves (as SVG) and a plain answer to "is it done?".

The curves read the same files ``facetwin train --plot`` draws (losses.csv, quality.csv; see
facetwin.modeldir). The answer reads the quality curve's trend: the swaps' identity distance from
``--evaluate-every`` when the model has one, otherwise the held-out reconstruction L1 that every
preview step scores.
"""

from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.modeldir import ModelDir

MAX_POINTS = 300  # per curve drawn: longer logs are averaged into this many bins
MIN_POINTS = 4  # scored points before the trend says anything
STILL = 0.01  # relative change over the recent window under which a curve counts as flat
SLOW = 0.04

Curve = tuple[str, str, list[tuple[float, float]]]  # label, colour, (x, y) points


@dataclass(frozen=True)
class Verdict:
    """The answer to "is it done?": ``state`` is one of early, improving, slowing, done."""

    state: str
    headline: str
    detail: str


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _series(rows: list[dict[str, str]], column: str) -> list[tuple[float, float]]:
    points = []
    for row in rows:
        value = row.get(column)
        if value not in (None, ""):
            points.append((float(row["iteration"]), float(value)))
    return points


def _thin(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return points
    array = np.array(points)
    bins = np.array_split(array, limit)
    return [(float(b[-1, 0]), float(b[:, 1].mean())) for b in bins]


@dataclass(frozen=True)
class Curves:
    losses: list[Curve]
    held_out: list[Curve]
    quality: list[Curve]
    iteration: int


def read_curves(model_dir: Path) -> Curves:
    """The model folder's curves: training losses (binned), held-out L1 per side, swap identity distances."""
    folder = ModelDir(model_dir)
    rows = _rows(folder.losses_csv)
    quality = _rows(folder.quality_csv)
    losses = [(f"train loss {s.upper()}", c, _thin(_series(rows, f"loss_{s}"))) for s, c in (("a", "#1f77b4"), ("b", "#ff7f0e"))]
    held = [(f"held-out L1 {s.upper()}", c, _series(rows, f"heldout_l1_{s}")) for s, c in (("a", "#1f77b4"), ("b", "#ff7f0e"))]
    identity = [(f"{s[0].upper()}→{s[2].upper()}: distance to target", c, _series(quality, f"identity_{s}"))
                for s, c in (("a2b", "#ff7f0e"), ("b2a", "#1f77b4"))]  # fmt: skip
    iteration = int(float(rows[-1]["iteration"])) if rows else 0
    return Curves(losses, held, identity, iteration)


def _trend(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Relative change of a curve over its recent half (fitted line), and that half's span in iterations."""
    recent = points[len(points) // 2 :] if len(points) >= 2 * 3 else points[-3:]
    x = np.array([p[0] for p in recent])
    y = np.array([p[1] for p in recent])
    span = float(x[-1] - x[0])
    if span <= 0:
        return 0.0, 0.0
    slope = float(np.polyfit(x, y, 1)[0])
    return slope * span / max(abs(float(y.mean())), 1e-9), span


def is_it_done(curves: Curves) -> Verdict:
    """Read the quality curve's trend. Lower is better on both curves it reads."""
    quality = [p for _, _, points in curves.quality for p in points]
    if len({x for x, _ in quality}) >= MIN_POINTS:
        by_step: dict[float, list[float]] = {}
        for x, y in quality:
            by_step.setdefault(x, []).append(y)
        points, what = sorted((x, float(np.mean(ys))) for x, ys in by_step.items()), "the swaps' distance to their target identity"
    else:
        by_step = {}
        for _, _, series in curves.held_out:
            for x, y in series:
                by_step.setdefault(x, []).append(y)
        points, what = sorted((x, float(np.mean(ys))) for x, ys in by_step.items() if x > 0), "held-out reconstruction error (L1)"
    if len(points) < MIN_POINTS:
        return Verdict("early", "Too early to say.",
                       f"{len(points)} of {MIN_POINTS} scored points so far; the answer reads the trend of {what}.")
    change, span = _trend(points)
    per = f"{abs(change):.1%} over the last {span:,.0f} iterations"
    if change < -SLOW:
        return Verdict("improving", "Not yet: it is still getting better.", f"{what.capitalize()} fell {per}.")
    if change < -STILL:
        return Verdict("slowing", "Nearly: it is still improving, slowly.",
                       f"{what.capitalize()} fell {per}; more training helps a little.")
    moved = "rose" if change > 0 else "fell"
    return Verdict("done", "Yes: it has stopped improving.",
                   f"{what.capitalize()} {moved} only {per}: more training of this model on these faces changes"
                   " little. Try the merge, or add faces.")


def svg_chart(curves: list[Curve], title: str, y_label: str, log: bool = False, width: int = 460, height: int = 220,
              guide: tuple[float, str] | None = None) -> str:
    """A small line chart as inline SVG (no script): axes with a few ticks, one polyline per curve, a legend."""
    points = [p for _, _, series in curves for p in series if not log or p[1] > 0]
    left, right, top, bottom = 52, 10, 24, 30
    head = (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
            f' aria-label="{html.escape(title)}"><text x="{left}" y="15" class="chart-title">{html.escape(title)}</text>')  # fmt: skip
    if not points:
        return head + f'<text x="{left}" y="{height // 2}" class="chart-empty">no points yet</text></svg>'
    transform = (lambda v: math.log10(v)) if log else (lambda v: v)
    xs = [p[0] for p in points]
    ys = [transform(p[1]) for p in points] + ([transform(guide[0])] if guide else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    pad = (y1 - y0) * 0.08 or 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (1 - (transform(y) - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [head, f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" class="chart-frame"/>']
    for i in range(4):
        value_t = y0 + (y1 - y0) * (i + 0.5) / 4
        value = 10**value_t if log else value_t
        y = top + (1 - (value_t - y0) / (y1 - y0)) * (height - top - bottom)
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" class="chart-tick" text-anchor="end">{value:.3g}</text>')
    for x in (x0, (x0 + x1) / 2, x1):
        parts.append(f'<text x="{px(x):.1f}" y="{height - 12}" class="chart-tick" text-anchor="middle">{x:,.0f}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 1}" class="chart-tick" text-anchor="end">iteration · {html.escape(y_label)}</text>')
    if guide:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(guide[0]):.1f}" y2="{py(guide[0]):.1f}" class="chart-guide"/>'
                     f'<text x="{width - right - 4}" y="{py(guide[0]) - 4:.1f}" class="chart-tick" text-anchor="end">{html.escape(guide[1])}</text>')  # fmt: skip
    for n, (label, colour, series) in enumerate(curves):
        usable = [p for p in series if not log or p[1] > 0]
        if usable:
            line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in usable)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            if len(usable) < 40:
                parts.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in usable)
        parts.append(f'<text x="{left + 6 + 170 * n}" y="{top + 14}" class="chart-legend" fill="{colour}">{html.escape(label)}</text>')
    return "".join(parts) + "</svg>"
