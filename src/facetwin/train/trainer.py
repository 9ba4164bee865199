"""``facetwin train``: the training loop, with resume, checkpoints, previews, logs and DDP.

The loop below only steps the model through its contract (``SwapModel.forward_pair``, ``loss``,
``configure_optimizer``); set-up is ``session.open_session`` and everything a person watches or a resume
needs hangs off the loop as hooks (``hooks.py``). The model folder's layout is ``facetwin.modeldir``'s.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from facetwin.devices import choose_device
from facetwin.errors import FacetwinError
from facetwin.modeldir import ChangesCallback, ModelDir, PrepareCallback
from facetwin.models.base import PairForward
from facetwin.options import RunOptions, TrainConfig
from facetwin.train import worker_server
from facetwin.train.data import unpack_pairs
from facetwin.train.hooks import Checkpoints, HeldOutScores, Hook, LossLog, Progress, QualityLog, StepRecord
from facetwin.train.session import Session, make_loader, open_session
from facetwin.train.weights import weights_digest


@dataclass
class RunResult:
    iteration: int
    stopped_because: str  # finished, time limit, interrupted
    checkpoint: Path | None
    last_losses: tuple[float, float] | None = None
    heldout_l1: dict[str, float] = field(default_factory=dict)  # at the last scored step (model frame)
    initial_heldout_l1: dict[str, float] = field(default_factory=dict)  # at step 0 of a new model
    data_wait_fraction: float = 0.0
    changes: list[str] = field(default_factory=list)  # settings this run changed on resume


class NonFiniteLoss(FacetwinError):
    pass


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to save and stop at the end of the current step."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def install(self) -> Callable[[], None]:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, _: object) -> None:
            self.reason = "interrupted"

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


class TrainingStep:
    """Forward both identities, their losses, backward and one optimizer step; raises NonFiniteLoss (on
    every rank together) instead of applying a NaN or infinite loss."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.forward: nn.Module = PairForward(session.model)
        if session.world_size > 1:
            device_ids = [session.device.index] if session.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(self.forward, device_ids=device_ids)
        self.scaler = torch.amp.GradScaler(session.device.type, enabled=session.dtype == torch.float16)

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        s = self.session
        with torch.autocast(s.device.type, dtype=s.dtype, enabled=s.dtype != torch.float32):
            losses = s.model.loss(self.forward(batch["a_source"], batch["b_source"]), batch)
        total = losses["a"] + losses["b"]
        if _agree(not bool(torch.isfinite(total.detach())), s):
            last = s.checkpoint.name if s.checkpoint else "none yet"
            raise NonFiniteLoss(f"loss became {total.item()} at iteration {s.iteration + 1}; stopped, the last good"
                                f" checkpoint ({last}) is kept in {s.model_dir.checkpoints_dir}")  # fmt: skip
        s.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(s.optimizer)
        self.scaler.update()
        return {side: float(value.item()) for side, value in losses.items()}


def train(
    model_dir: Path | ModelDir,
    config: TrainConfig | Mapping[str, Any] | None,
    options: RunOptions,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_prepare: PrepareCallback | None = None,
    on_changes: ChangesCallback | None = None,
) -> RunResult:
    """Train (or resume) the model in ``model_dir``: single process, or one rank of a torchrun job.

    ``config``: a TrainConfig to start a new folder; on an existing folder, a TrainConfig or a mapping of
    its fields with this run's settings (None: not given): fixed settings that differ raise FacetwinError,
    others are applied and listed in ``RunResult.changes`` (and in the folder's runs.jsonl), and told to
    ``on_changes`` (one line each) before the run starts. ``on_step`` hears of every step,
    ``on_prepare(what, done, total)`` of the training cache being built."""
    world_size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    device = choose_device(options.device, int(os.environ.get("LOCAL_RANK", "0")))
    if options.iterations is None and options.minutes is None:
        raise FacetwinError("give --iterations or --minutes (or both)")
    worker_server.start(options.workers)  # it imports while this process sets up
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        folder = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
        return _run(open_session(folder, config, options, device, rank, world_size, on_prepare, on_changes), options, on_step)
    finally:
        if world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _run(session: Session, options: RunOptions, on_step: Callable[[int, dict[str, float]], None] | None) -> RunResult:
    stop_at = options.iterations if options.iterations is not None else session.iteration + 10**9
    deadline = math.inf if options.minutes is None else time.monotonic() + options.minutes * 60
    scores = HeldOutScores(options.preview_every, stop_at)
    hooks: list[Hook] = []
    if session.is_main:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(session.model_dir.tb_dir), purge_step=session.iteration + 1)
        quality = [QualityLog(options.evaluate_every, writer)] if options.evaluate_every else []
        hooks = [scores, *quality, LossLog(writer, scores), *([Progress(on_step)] if on_step else []),
                 Checkpoints(options.save_every, options.keep)]
        session.model_dir.log_run({"from_iteration": session.iteration, "changes": session.changes,
                                   "options": {k: v for k, v in vars(options).items() if v is not None}})  # fmt: skip
    result = RunResult(session.iteration, "finished", session.checkpoint, changes=session.changes)
    stop = _StopFlag()
    restore_signals = stop.install() if session.is_main or session.world_size == 1 else (lambda: None)
    step, waited, stepped = TrainingStep(session), 0.0, 0.0
    try:
        for hook in hooks:
            hook.start(session)
        batches = iter(make_loader(session, stop_at, options.workers))
        while session.iteration < stop_at:
            if _agree(time.monotonic() >= deadline or stop.reason is not None, session):
                result.stopped_because = "interrupted" if stop.reason else "time limit"
                break
            t0 = time.perf_counter()
            batch = session.to_device(unpack_pairs(next(batches), session.model.spec.size))
            t1 = time.perf_counter()
            losses = step(batch)
            session.iteration += 1
            record = StepRecord(session.iteration, losses, t1 - t0, time.perf_counter() - t0,
                                2 * session.config.batch_size * session.world_size)  # fmt: skip
            waited, stepped = waited + record.wait_s, stepped + record.step_s
            result.last_losses = (losses["a"], losses["b"])
            for hook in hooks:
                hook.after_step(session, record)
        for hook in hooks:
            hook.finish(session, result.stopped_because)
    finally:
        restore_signals()
        for hook in hooks:
            hook.close()
    _check_ranks_agree(session)
    result.iteration, result.checkpoint = session.iteration, session.checkpoint
    result.heldout_l1, result.initial_heldout_l1 = scores.latest, scores.initial
    result.data_wait_fraction = waited / stepped if stepped else 0.0
    return result


def _agree(flag: bool, session: Session) -> bool:
    """True on every rank when any rank says True, so all ranks stop (or skip) together."""
    if session.world_size == 1:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=session.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def _check_ranks_agree(session: Session) -> None:
    """After a DDP run every rank must hold the same weights; rank 0 records their digests."""
    if session.world_size == 1:
        return
    digests: list[str | None] = [None] * session.world_size
    dist.all_gather_object(digests, weights_digest(session.model))
    if len(set(digests)) != 1:
        raise FacetwinError(f"ranks disagree on the weights after training: {digests}")
    if session.is_main and session.checkpoint is not None:
        from facetwin.atomic import write_json_atomically

        write_json_atomically(session.checkpoint / "ranks.json", {"world_size": session.world_size, "digests": digests})
