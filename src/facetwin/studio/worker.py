"""One studio job in its own process: ``python -m facetwin.studio.worker PROJECT JOB_ID``.

It runs the stage through the same Python API the command line calls (``facetwin.extract.extract``,
``facetwin.train.trainer.train``, ``facetwin.convert.run.convert``, ``facetwin.pipeline.evaluate_model``),
so the content gate and the labelling are exactly the command line's. Its log (stdout and stderr, which
the server sends to ``.studio/logs/<id>.log``) starts with the equivalent command. Progress (done, total,
rate, ETA) goes to the job's row twice a second.

Stopping: SIGTERM or SIGINT stops the job; training saves a checkpoint first (its own handler), extract
has committed every frame already. When the server that started it dies, the job stops the same way
(it watches its parent), and the next server shows it interrupted.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from facetwin.errors import FacetwinError
from facetwin.studio.project import Project
from facetwin.studio.store import CANCELLED, DONE, FAILED, INTERRUPTED, Job, Store

REPORT_EVERY_S = 0.5


class Stopped(Exception):
    """SIGTERM or SIGINT outside training (training handles them itself and saves)."""


class Reporter:
    """Writes a job's progress to its row at most twice a second, and a line to the log every few seconds."""

    def __init__(self, store: Store, job_id: int, unit: str) -> None:
        self.store, self.job_id, self.unit = store, job_id, unit
        self.last_write = 0.0
        self.last_log = time.monotonic()

    def report(self, done: float, total: float | None, rate: float | None, stage: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < REPORT_EVERY_S:
            return
        self.last_write = now
        eta = (total - done) / rate if total is not None and rate else None
        self.store.set_progress(self.job_id, {"done": done, "total": total, "unit": self.unit, "rate": rate,
                                              "eta_s": eta, "stage": stage})  # fmt: skip
        if force or now - self.last_log > 5:
            self.last_log = now
            rate_text = f", {rate:.2f} {self.unit}/s" if rate else ""
            eta_text = f", about {eta:.0f} s to go" if eta is not None else ""
            print(f"{stage}: {done:g}{'' if total is None else f'/{total:g}'} {self.unit}{rate_text}{eta_text}", flush=True)


class RichWatcher:
    """Reads the stage's rich Progress (never drawn) on a thread and reports its sums."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.progress = Progress(console=Console(file=sys.stderr, force_terminal=False), auto_refresh=False, transient=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="studio-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self.progress

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._report(force=True)

    def _report(self, force: bool = False) -> None:
        tasks = list(self.progress.tasks)
        if not tasks:
            return
        done = sum(t.completed for t in tasks)
        total = None if any(t.total is None for t in tasks) else sum(t.total or 0 for t in tasks)
        current = next((t for t in reversed(tasks) if not t.finished), tasks[-1])
        self.reporter.report(done, total, current.finished_speed or current.speed, current.description, force)

    def _loop(self) -> None:
        while not self._stop.wait(REPORT_EVERY_S):
            self._report()


def command_line(job: Job, project: Project) -> list[str]:
    """The ``facetwin`` command that does what this job does (printed at the top of its log)."""
    p = job.params
    if job.kind == "extract":
        return ["facetwin", "extract", *p["inputs"], "-o", f"facesets/{p['faceset']}", "--every", str(p["every"]),
                "--min-face", str(p["min_face"]), "--max-faces", str(p["max_faces"]), "--size", str(p["size"])]  # fmt: skip
    if job.kind == "train":
        line = ["facetwin", "train", f"facesets/{p['faceset_a']}", f"facesets/{p['faceset_b']}", "-m", f"models/{p['model']}",
                "--model", p["architecture"], "--batch-size", str(p["batch_size"]), "--save-every", str(p["save_every"]),
                "--preview-every", str(p["preview_every"])]  # fmt: skip
        line += ["--iterations", str(p["iterations"])] if p.get("iterations") else []
        line += ["--minutes", str(p["minutes"])] if p.get("minutes") else []
        line += ["--evaluate-every", str(p["evaluate_every"])] if p.get("evaluate_every") else []
        return line
    if job.kind == "convert":
        return ["facetwin", "convert", p["input"], "-m", f"models/{p['model']}", "-o", p["output"], "--direction",
                p["direction"], "--mask", p["mask"], "--erode", str(p["erode"]), "--feather", str(p["feather"]),
                "--colour", p["colour"], "--blend", p["blend"]]  # fmt: skip
    line = ["facetwin", "evaluate", "-m", f"models/{p['model']}", "-o", f"reports/{p['report']}", "--faces", str(p["faces"])]
    return line + (["--video", p["video"], "--direction", p["direction"]] if p.get("video") else [])


def _extract(job: Job, project: Project, reporter: Reporter) -> dict[str, Any]:
    from facetwin.extract import extract
    from facetwin.options import ExtractOptions

    p = job.params
    options = ExtractOptions(every=p["every"], min_face=p["min_face"], max_faces=p["max_faces"], size=p["size"])
    with RichWatcher(reporter) as progress:
        report = extract([project.resolve(i) for i in p["inputs"]], project.faceset(p["faceset"]), options, progress)
    for problem in report.problems:
        print(f"facetwin: {problem}", flush=True)
    faces = sum(r.faces for r in report.results)
    summary = {"faces": faces, "frames": sum(r.frames for r in report.results), "problems": report.problems}
    print(f"{faces} faces into facesets/{p['faceset']}", flush=True)
    if report.exit_code:
        refused = [r for r in report.results if r.refused]
        raise FacetwinError(report.fatal or (f"{len(refused)} file(s) refused by the content gate" if refused
                                             else "nothing could be extracted"))  # fmt: skip
    return summary


def _train(job: Job, project: Project, reporter: Reporter) -> dict[str, Any]:
    from facetwin.modeldir import ModelDir
    from facetwin.options import RunOptions, TrainConfig
    from facetwin.train.trainer import train

    p = job.params
    folder = ModelDir(project.model(p["model"]))
    config: TrainConfig | dict[str, Any]
    if folder.exists():
        config = {"batch_size": p["batch_size"]}
    else:
        config = TrainConfig(str(project.faceset(p["faceset_a"])), str(project.faceset(p["faceset_b"])),
                             model=p["architecture"], batch_size=p["batch_size"])  # fmt: skip
    options = RunOptions(iterations=p.get("iterations"), minutes=p.get("minutes"), save_every=p["save_every"],
                         preview_every=p["preview_every"], evaluate_every=p.get("evaluate_every"),
                         device=p.get("device", "auto"), workers=p.get("workers", 1))  # fmt: skip
    started = time.monotonic()
    first: list[float] = []  # (time, iteration) of this run's first step

    def on_step(iteration: int, figures: dict[str, float]) -> None:
        if not first:
            first.extend([time.monotonic(), iteration])
        elapsed = time.monotonic() - float(first[0])
        rate = (iteration - int(first[1])) / elapsed if elapsed > 0 else None
        total: float | None = p.get("iterations")
        if total is None and p.get("minutes") and rate:  # a time limit: the iteration it should reach
            total = iteration + rate * max(0.0, p["minutes"] * 60 - (time.monotonic() - started))
        reporter.report(iteration, total, rate, f"training: loss A {figures['loss_a']:.4f}, B {figures['loss_b']:.4f}")

    def on_prepare(what: str, done: int, total: int) -> None:
        reporter.report(done, total, None, what)

    def on_changes(changes: list[str]) -> None:  # before the run, not when it ends
        for change in changes:
            print(f"changed for this model from now on: {change}", flush=True)

    result = train(folder, config, options, on_step, on_prepare, on_changes)
    print(f"stopped at iteration {result.iteration} ({result.stopped_because}); checkpoint {result.checkpoint}", flush=True)
    reporter.report(result.iteration, p.get("iterations") or result.iteration, None, f"stopped ({result.stopped_because})", force=True)
    if result.stopped_because == "interrupted":
        raise Stopped(f"stopped at iteration {result.iteration}; checkpoint saved")
    return {"iteration": result.iteration, "stopped_because": result.stopped_because, "heldout_l1": result.heldout_l1}


def _convert(job: Job, project: Project, reporter: Reporter) -> dict[str, Any]:
    from facetwin.convert.run import convert
    from facetwin.options import BlendOptions, ConvertOptions

    p = job.params
    blend = BlendOptions(p["mask"], p["erode"], p["feather"], p["colour"], p["blend"], p.get("restore", "none"))
    options = ConvertOptions(p["direction"], blend, side_by_side=p.get("side_by_side", False))
    output = project.resolve(p["output"])
    with RichWatcher(reporter) as progress:
        report = convert(project.resolve(p["input"]), project.model(p["model"]), output, options, progress)
    for problem in ([report.problem] if report.problem else []) + report.refused:
        print(f"facetwin: {problem}", flush=True)
    print(f"{p['output']}: {report.frames} frames, {report.swapped_frames} with a swapped face; labelled synthetic"
          f" (watermark {report.watermark}, signed Content Credentials)", flush=True)  # fmt: skip
    if report.frames == 0:
        raise FacetwinError(f"{p['input']}: nothing could be converted")
    return {"output": p["output"], "frames": report.frames, "swapped_frames": report.swapped_frames, "watermark": report.watermark}


def _evaluate(job: Job, project: Project, reporter: Reporter) -> dict[str, Any]:
    from facetwin.options import EvaluateOptions
    from facetwin.pipeline import evaluate_model

    p = job.params
    video = project.resolve(p["video"]) if p.get("video") else None
    out = project.reports_dir / p["report"]
    with RichWatcher(reporter) as progress:
        _, report = evaluate_model(project.model(p["model"]), out, video, EvaluateOptions(p["faces"], p["direction"]), progress)
    print(f"report: {project.relative(report)}", flush=True)
    return {"report": project.relative(report)}


RUNNERS: dict[str, tuple[str, Callable[[Job, Project, Reporter], dict[str, Any]]]] = {
    "extract": ("frames", _extract), "train": ("iterations", _train), "convert": ("frames", _convert),
    "evaluate": ("frames", _evaluate),
}  # fmt: skip


def _watch_parent(parent: int) -> None:
    """When the server that started this job dies, stop the job as a cancel would (training saves)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            print("facetwin studio: the server stopped; stopping this job", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run_job(project: Project, store: Store, job_id: int, parent: int) -> int:
    """Run job ``job_id`` to its end and record how it ended; the process exit code (0 done, 1 failed, 2 stopped)."""
    job = store.job(job_id)
    if job is None:
        print(f"facetwin studio: no job {job_id}", file=sys.stderr)
        return 1

    def stop(signum: int, _: object) -> None:
        raise Stopped(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=_watch_parent, args=(parent,), name="studio-parent", daemon=True).start()
    print("$ " + shlex.join(command_line(job, project)), flush=True)
    if job.cancel_requested:
        store.finish_job(job_id, CANCELLED, error="cancelled before it started")
        return 2
    unit, runner = RUNNERS[job.kind]
    try:
        result = runner(job, project, Reporter(store, job_id, unit))
    except Stopped as exc:
        current = store.job(job_id)
        state = CANCELLED if current is not None and current.cancel_requested else INTERRUPTED
        print(f"facetwin studio: {state}: {exc}", flush=True)
        store.finish_job(job_id, state, error=str(exc))
        return 2
    except (FacetwinError, OSError) as exc:
        print(f"facetwin: error: {exc}", flush=True)
        store.finish_job(job_id, FAILED, error=str(exc))
        return 1
    store.finish_job(job_id, DONE, result)
    return 0


def main(argv: list[str]) -> int:
    from facetwin.quiet import filter_native_stderr

    filter_native_stderr()
    project = Project(Path(argv[0]))
    return run_job(project, Store(project.database), int(argv[1]), int(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
