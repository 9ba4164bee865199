"""The training progress line: iteration, loss A, loss B, images/s and ETA, on stderr."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """Rich progress bar fed by the trainer's per-step callback. The total is the iteration target, or
    the time budget in seconds when only --minutes is given."""

    def __init__(self, console: Console, iterations: int | None, minutes: float | None) -> None:
        self.by_time = iterations is None
        self.total = minutes * 60 if self.by_time and minutes else iterations
        self.progress = Progress(
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
        self.started = time.monotonic()
        self.first: int | None = None

    def __enter__(self) -> TrainProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def update(self, iteration: int, values: dict[str, float]) -> None:
        if self.first is None:
            self.first = iteration - 1
            if not self.by_time:
                self.progress.update(self.task, completed=self.first)
        completed = time.monotonic() - self.started if self.by_time else iteration
        self.progress.update(
            self.task, completed=completed, iteration=iteration, loss_a=values["loss_a"], loss_b=values["loss_b"],
            rate=values["images_per_s"],
        )  # fmt: skip
