"""Progress on a console that is not a terminal (a log file, a pipe, CI): Rich draws nothing there until
the job ends, so facetwin's progress prints a line with count, rate and ETA every few seconds."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from facetwin.extract import extract
from facetwin.options import ExtractOptions
from facetwin.progress import make_progress


def test_a_job_logged_to_a_file_shows_its_progress_while_it_runs(short_clips: dict[str, Path], tmp_path: Path) -> None:
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=120)
    assert not console.is_terminal
    with make_progress("frames", console) as progress:
        progress.log_every = 0.3
        report = extract([short_clips["b2"]], tmp_path / "set", ExtractOptions(every=1, max_faces=1), progress)
    assert report.exit_code == 0
    counts = [(int(m[1]), int(m[2])) for m in re.finditer(r"(\d+)/(\d+) [\d.,]+ frames/s .* eta", log.getvalue())]
    running = [done for done, total in counts if done < total]
    assert len(running) >= 2, f"fewer than two lines while extract ran:\n{log.getvalue()}"
    assert running == sorted(running), "the lines count up"


def test_the_finished_line_is_printed_once() -> None:
    """Rich prints the final state when the display stops; the periodic line must not print it too."""
    log = io.StringIO()
    with make_progress("frames", Console(file=log, force_terminal=False, width=120)) as progress:
        progress.log_every = 0.0  # a line at every advance, the last one included
        task = progress.add_task("frames", total=5)
        for _ in range(5):
            progress.advance(task)
    lines = re.findall(r"(\d+)/5 ", log.getvalue())
    assert lines.count("5") == 1 and lines.count("4") == 1, log.getvalue()


def test_the_training_line_shows_real_losses_from_its_first_draw() -> None:
    """The step bar appears with the first step's losses (it used to draw once with loss 0.0000), and the
    seconds before the first step are announced."""
    from facetwin.train.progress_line import TrainProgress

    log = io.StringIO()
    with TrainProgress(Console(file=log, force_terminal=True, width=160), 10, None) as progress:
        progress.update(1, {"loss_a": 0.1234, "loss_b": 0.2345, "images_per_s": 5.0})
    text = log.getvalue()
    assert text.startswith("train: opening the face sets"), text
    assert "loss A 0.1234" in text and "0.0000" not in text, text
