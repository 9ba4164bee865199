"""What hangs off the training loop: each hook sees every finished step and the end of the run.

The loop (trainer.py) only steps the model; these write what a person watches and what a resume needs:
``HeldOutScores`` (held-out reconstruction and the preview PNG), ``QualityLog`` (``--evaluate-every``),
``LossLog`` (losses.csv and TensorBoard), ``Progress`` (the caller's callback), ``Checkpoints``. Each is
small and is tested on its own. Hooks run in list order; a hook may add figures to the step's record
for the hooks after it (held-out scores go into the loss log's row).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from facetwin.checkpoint import save_checkpoint
from facetwin.scoring.held_out import HeldOutEvaluator
from facetwin.train.preview import write_preview
from facetwin.train.session import Session

LOG_FIELDS = ("iteration", "elapsed_s", "loss_a", "loss_b", "images_per_s", "data_wait", "heldout_l1_a", "heldout_l1_b")
QUALITY_FIELDS = ("iteration", "ssim_a", "ssim_b", "psnr_a", "psnr_b", "identity_a2b", "identity_b2a", "retrieval_a2b",
                  "retrieval_b2a")  # fmt: skip


@dataclass
class StepRecord:
    """One finished step: losses, timing (seconds waiting for data and in all), and figures hooks add."""

    iteration: int
    losses: dict[str, float]
    wait_s: float
    step_s: float
    images: int  # faces in this step, both identities, all ranks
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.step_s, 1e-9)


class Hook:
    def start(self, session: Session) -> None:
        """Before the first step of this run."""

    def after_step(self, session: Session, record: StepRecord) -> None:
        """After each step."""

    def finish(self, session: Session, reason: str) -> None:
        """After the last step (also after a Ctrl-C; not after an error)."""

    def close(self) -> None:
        """Always, last: release files."""


class HeldOutScores(Hook):
    """Every ``every`` steps, at the run's last step and at step 0 of a new model: held-out reconstruction
    (L1, PSNR, SSIM in the model's frame) into the step record, and a preview PNG."""

    def __init__(self, every: int, stop_at: int) -> None:
        self.every, self.stop_at = every, stop_at
        self.evaluator: HeldOutEvaluator | None = None
        self.initial: dict[str, float] = {}
        self.latest: dict[str, float] = {}
        self.scored_at = -1

    def _score(self, session: Session) -> dict[str, float]:
        if self.evaluator is None:
            self.evaluator = HeldOutEvaluator(session.faces, session.model.spec, limit=64)
        scores = self.evaluator.reconstruction(session.model, session.device, session.dtype)
        self.latest, self.scored_at = {side: values["l1"] for side, values in scores.items()}, session.iteration
        return self.latest

    def start(self, session: Session) -> None:
        if session.iteration == 0:
            self.initial = self._score(session)

    def after_step(self, session: Session, record: StepRecord) -> None:
        if record.iteration % self.every == 0 or record.iteration == self.stop_at:
            record.figures.update({f"heldout_l1_{side}": value for side, value in self._score(session).items()})
            write_preview(session.model, self.evaluator_faces(), session.device, session.model_dir.preview_path(record.iteration))

    def evaluator_faces(self) -> dict[str, Any]:
        assert self.evaluator is not None
        return {side: faces.inputs for side, faces in self.evaluator.held.items()}

    def finish(self, session: Session, reason: str) -> None:
        """A run always ends with a look at where it got."""
        path = session.model_dir.preview_path(session.iteration)
        if session.iteration > 0 and not path.is_file():
            self._score(session)
            write_preview(session.model, self.evaluator_faces(), session.device, path)


class QualityLog(Hook):
    """``--evaluate-every``: the evaluator's fast figures (reconstruction and identity; dlib loads on first
    use) on the live model, appended to quality.csv and TensorBoard, so a user sees when the swaps stop
    getting better."""

    def __init__(self, every: int, writer: Any) -> None:
        self.every, self.writer = every, writer
        self.evaluator: HeldOutEvaluator | None = None

    def after_step(self, session: Session, record: StepRecord) -> None:
        if record.iteration % self.every:
            return
        if self.evaluator is None:
            self.evaluator = HeldOutEvaluator(session.faces, session.model.spec, limit=24, identity=True)
        report = self.evaluator.evaluate(session.model, session.device, session.dtype,
                                         f"{session.config.model}@{record.iteration}", record.iteration)  # fmt: skip
        values = {
            "ssim_a": report.reconstruction["a"]["ssim"], "ssim_b": report.reconstruction["b"]["ssim"],
            "psnr_a": report.reconstruction["a"]["psnr"], "psnr_b": report.reconstruction["b"]["psnr"],
            "identity_a2b": report.identity["a2b"]["to_target"], "identity_b2a": report.identity["b2a"]["to_target"],
            "retrieval_a2b": report.identity["a2b"]["retrieval"], "retrieval_b2a": report.identity["b2a"]["retrieval"],
        }  # fmt: skip
        path = session.model_dir.quality_csv
        new = not path.is_file()
        with open(path, "a", newline="") as handle:
            log = csv.DictWriter(handle, QUALITY_FIELDS)
            if new:
                log.writeheader()
            log.writerow({"iteration": record.iteration, **{k: f"{v:.5f}" for k, v in values.items()}})
        for name, value in values.items():
            self.writer.add_scalar(f"quality/{name}", value, record.iteration)


def trim_log(path: os.PathLike[str], iteration: int, fields: tuple[str, ...] = LOG_FIELDS) -> None:
    """On resume, drop log rows past the checkpoint: those steps will be run (and logged) again."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["iteration"]) <= iteration]
    partial = f"{os.fspath(path)}.tmp"
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


class LossLog(Hook):
    """losses.csv (line-buffered, so it can be watched live) and TensorBoard: one row per step, with the
    held-out figures on the steps that have them. On resume, rows past the checkpoint are dropped."""

    def __init__(self, writer: Any, scores: HeldOutScores) -> None:
        self.writer, self.scores = writer, scores
        self.handle: IO[str] | None = None
        self.log: csv.DictWriter[str] | None = None
        self.started = time.monotonic()

    def start(self, session: Session) -> None:
        path = session.model_dir.losses_csv
        trim_log(path, session.iteration)
        new = not path.is_file()
        self.handle = open(path, "a", newline="", buffering=1)
        self.log = csv.DictWriter(self.handle, LOG_FIELDS)
        if new:
            self.log.writeheader()
        if session.iteration == 0 and self.scores.initial:
            self.log.writerow({"iteration": 0, "elapsed_s": 0.0,
                               **{f"heldout_l1_{k}": f"{v:.6f}" for k, v in self.scores.initial.items()}})  # fmt: skip

    def after_step(self, session: Session, record: StepRecord) -> None:
        assert self.log is not None
        row: dict[str, Any] = {
            "iteration": record.iteration, "elapsed_s": round(time.monotonic() - self.started, 3),
            "loss_a": f"{record.losses['a']:.6f}", "loss_b": f"{record.losses['b']:.6f}",
            "images_per_s": f"{record.images_per_s:.2f}", "data_wait": f"{record.wait_s / max(record.step_s, 1e-9):.4f}",
        }  # fmt: skip
        row.update({key: f"{value:.6f}" for key, value in record.figures.items() if key.startswith("heldout_l1_")})
        self.log.writerow(row)
        self.writer.add_scalar("loss/a", record.losses["a"], record.iteration)
        self.writer.add_scalar("loss/b", record.losses["b"], record.iteration)
        self.writer.add_scalar("images_per_s", record.images_per_s, record.iteration)
        for key, value in record.figures.items():
            self.writer.add_scalar(key.replace("heldout_l1_", "heldout_l1/"), value, record.iteration)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.writer.close()


class Progress(Hook):
    """Hands (iteration, losses and images/s) to the caller's callback (the CLI's progress line)."""

    def __init__(self, callback: Callable[[int, dict[str, float]], None]) -> None:
        self.callback = callback

    def after_step(self, session: Session, record: StepRecord) -> None:
        self.callback(record.iteration, {"loss_a": record.losses["a"], "loss_b": record.losses["b"],
                                         "images_per_s": record.images_per_s})  # fmt: skip


class Checkpoints(Hook):
    """Every ``every`` steps, and at the end unless that very step was just saved: a checkpoint with the
    torch RNG and the cumulative training time (see facetwin.checkpoint)."""

    def __init__(self, every: int, keep: int) -> None:
        self.every, self.keep = every, keep
        self.started = time.monotonic()
        self.saved_at = -1

    def save(self, session: Session, reason: str) -> None:
        import torch

        state = {"seed": session.config.seed, "reason": reason, "torch_rng": torch.get_rng_state().tolist(),
                 "world_size": session.world_size,
                 "train_seconds": round(session.trained_before + time.monotonic() - self.started, 3)}  # fmt: skip
        session.checkpoint = save_checkpoint(session.model_dir.checkpoints_dir, session.iteration, session.model,
                                             session.optimizer, state, self.keep)  # fmt: skip
        self.saved_at = session.iteration

    def after_step(self, session: Session, record: StepRecord) -> None:
        if record.iteration % self.every == 0:
            self.save(session, "periodic")

    def finish(self, session: Session, reason: str) -> None:
        if session.iteration > 0 and self.saved_at != session.iteration and (
                session.checkpoint is None or int(session.checkpoint.name) != session.iteration):  # fmt: skip
            self.save(session, reason)
