"""The progress bar every long job shows: what, how far, how fast (items/s) and how long to go."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

LOG_EVERY_S = 10.0  # a line this often when the console is a log file or a pipe


class LoggedProgress(Progress):
    """Rich's progress display, which on a console that is not a terminal (a log file, a pipe, CI, nohup)
    draws nothing until the job ends: there it prints each task's line every ``log_every`` seconds
    instead, so a long job in a log still shows how far it is, its rate and ETA."""

    def __init__(self, *columns: str | ProgressColumn, log_every: float = LOG_EVERY_S, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.log_every = log_every
        self._logged: dict[TaskID, float] = {}

    def _log(self, task_id: TaskID) -> None:
        if self.console.is_terminal or self.disable:
            return
        now = time.monotonic()
        if now - self._logged.setdefault(task_id, now) >= self.log_every:
            self._logged[task_id] = now
            with self._lock:
                task = self._tasks[task_id]
            if not task.finished:  # Rich prints the finished line itself when the display stops
                self.console.print(self.make_tasks_table([task]))

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log(task_id)


class RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("--" if speed is None else f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


def make_progress(unit: str = "frames", console: Console | None = None) -> LoggedProgress:
    return LoggedProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )
