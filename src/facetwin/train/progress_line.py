"""The training progress lines on stderr: building the face cache (faces/s, ETA), then iteration, loss A,
loss B, images/s and ETA."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from facetwin.progress import LoggedProgress, make_progress


class TrainProgress:
    """Rich progress bars fed by the trainer's callbacks: ``prepare`` while the training cache is built
    (one bar per face set), ``update`` per step. The step bar's total is the iteration target, or the time
    budget in seconds when only --minutes is given. Each display starts when its first report arrives."""

    def __init__(self, console: Console, iterations: int | None, minutes: float | None) -> None:
        self.console = console
        self.by_time = iterations is None
        self.total = minutes * 60 if self.by_time and minutes else iterations
        self.progress = LoggedProgress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn() if not self.by_time else TextColumn("it {task.fields[iteration]}"),
            TextColumn("loss A {task.fields[loss_a]:.4f}  loss B {task.fields[loss_b]:.4f}"),
            TextColumn("{task.fields[rate]:.1f} img/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("train", total=self.total, iteration=0, loss_a=0.0, loss_b=0.0, rate=0.0)
        self.first: int | None = None
        self.started = 0.0
        self.preparing: Progress | None = None
        self.prepare_tasks: dict[str, TaskID] = {}

    def __enter__(self) -> TrainProgress:
        self.console.print("train: opening the face sets, building the model and the first batch")
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop_preparing()
        if self.first is not None:
            self.progress.stop()

    def prepare(self, what: str, done: int, total: int) -> None:
        if self.preparing is None:
            self.preparing = make_progress("faces", self.console)
            self.preparing.start()
        if what not in self.prepare_tasks:
            self.prepare_tasks[what] = self.preparing.add_task(what, total=total)
        self.preparing.update(self.prepare_tasks[what], completed=done, total=total)

    def _stop_preparing(self) -> None:
        if self.preparing is not None:
            self.preparing.stop()
            self.preparing = None

    def update(self, iteration: int, values: dict[str, float]) -> None:
        starting = self.first is None
        if starting:
            self._stop_preparing()
            self.first, self.started = iteration - 1, time.monotonic()
            if not self.by_time:
                self.progress.update(self.task, completed=self.first)
        completed = time.monotonic() - self.started if self.by_time else iteration
        self.progress.update(
            self.task, completed=completed, iteration=iteration, loss_a=values["loss_a"], loss_b=values["loss_b"],
            rate=values["images_per_s"],
        )  # fmt: skip
        if starting:
            self.progress.start()  # after the first step's figures are in: its first line shows real losses
