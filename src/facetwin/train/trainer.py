"""``facetwin train``: the training loop, with resume, checkpoints, previews, logs and DDP.

The model folder holds everything: ``config.json`` (settings fixed at the first run, so a resume needs
only the folder), ``checkpoints/``, ``previews/``, ``losses.csv`` and TensorBoard events in ``tb/``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from facetwin.devices import choose_device, choose_precision, memory_format, to_model_input
from facetwin.errors import FacetwinError
from facetwin.models.base import SwapModel
from facetwin.models.registry import build_model
from facetwin.train.augment import AugmentSettings
from facetwin.train.checkpoint import complete_checkpoints, load_checkpoint, save_checkpoint, write_json_atomically
from facetwin.train.data import (
    SIDES,
    PairDataset,
    StepSampler,
    held_out_batch,
    load_pool,
    split_pool,
    worker_init,
)
from facetwin.train.losses import face_loss, l1_loss, masked_l1
from facetwin.train.preview import write_preview

CONFIG = "config.json"
LOG_FIELDS = ("iteration", "elapsed_s", "loss_a", "loss_b", "images_per_s", "data_wait", "heldout_l1_a", "heldout_l1_b")


@dataclass(frozen=True)
class TrainConfig:
    """Settings that belong to the model and are stored with it."""

    faceset_a: str
    faceset_b: str
    model: str = "original"
    batch_size: int = 16
    seed: int = 0
    holdout: float = 0.05
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    learning_rate: float | None = None  # None: the model's own (original: 5e-5, as in 2017)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**{**data, "augment": AugmentSettings(**data.get("augment", {}))})


@dataclass(frozen=True)
class RunOptions:
    """Settings of this run only."""

    iterations: int | None = None  # total target, counted from the first run
    minutes: float | None = None
    save_every: int = 500
    preview_every: int = 250
    keep: int = 3
    device: str = "auto"
    precision: str = "auto"
    workers: int = 1
    evaluate_every: int | None = None  # run facetwin evaluate's fast metrics every N iterations


@dataclass
class RunResult:
    iteration: int
    stopped_because: str
    checkpoint: Path | None
    last_losses: tuple[float, float] | None = None
    heldout_l1: dict[str, float] = field(default_factory=dict)
    data_wait_fraction: float = 0.0
    initial_heldout_l1: dict[str, float] = field(default_factory=dict)


class NonFiniteLoss(FacetwinError):
    pass


QUALITY_FIELDS = ("iteration", "ssim_a", "ssim_b", "psnr_a", "psnr_b", "identity_a2b", "identity_b2a", "retrieval_a2b", "retrieval_b2a")


class QualityLog:
    """`--evaluate-every`: evaluate's fast metrics (reconstruction and identity on the held-out faces) on
    the live model, appended to quality.csv, so a user sees when the swaps stop getting better. The
    held-out faces and identity centroids are prepared once, on first use."""

    def __init__(self, model_dir: Path, config: TrainConfig, spec: Any) -> None:
        self.path, self.config, self.spec = model_dir / "quality.csv", config, spec
        self._evaluator: Any = None

    def record(self, model: SwapModel, device: torch.device, dtype: torch.dtype, model_id: str, iteration: int) -> dict[str, float]:
        from facetwin.evaluate.held_out import HeldOutEvaluator  # dlib and the face models load only when asked for

        if self._evaluator is None:
            self._evaluator = HeldOutEvaluator(self.config, self.spec, limit=24, fast=True)
        report = self._evaluator.evaluate(model, device, dtype, model_id, iteration)
        values = {
            "ssim_a": report.reconstruction["a"]["ssim"], "ssim_b": report.reconstruction["b"]["ssim"],
            "psnr_a": report.reconstruction["a"]["psnr"], "psnr_b": report.reconstruction["b"]["psnr"],
            "identity_a2b": report.identity["a2b"]["to_target"], "identity_b2a": report.identity["b2a"]["to_target"],
            "retrieval_a2b": report.identity["a2b"]["retrieval"], "retrieval_b2a": report.identity["b2a"]["retrieval"],
        }  # fmt: skip
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as handle:
            log = csv.DictWriter(handle, QUALITY_FIELDS)
            if new:
                log.writeheader()
            log.writerow({"iteration": iteration, **{k: f"{v:.5f}" for k, v in values.items()}})
        return values


def resolve_config(model_dir: Path, given: TrainConfig | None) -> TrainConfig:
    """The stored config of an existing model folder, or the given one for a new folder."""
    path = model_dir / CONFIG
    if path.is_file():
        import json

        return TrainConfig.from_json(json.loads(path.read_text()))
    if given is None:
        raise FacetwinError(f"{model_dir}: no model here yet; give FACESET_A and FACESET_B to start one")
    return given


def make_optimizer(model: SwapModel, device: torch.device, learning_rate: float | None = None) -> torch.optim.Adam:
    """The model's Adam, at its own learning rate unless the config sets one. Fused (one kernel over all
    parameters) on CPU and CUDA: the per-tensor foreach version spent ~0.3 s of a ~2 s step of
    ``original`` on the CPU, the fused one ~0.05 s."""
    fused = device.type in ("cpu", "cuda")
    lr = learning_rate if learning_rate is not None else model.learning_rate
    return torch.optim.Adam(model.parameters(), lr=lr, betas=model.betas, fused=fused)


class PairStep(nn.Module):
    """One forward for both identities: the shared encoder sees A and B in one batch, each decoder its own.

    DistributedDataParallel wraps this, so both decoders' gradients are reduced in one backward.
    """

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        codes = self.model.encoder(torch.cat([a, b]))
        code_a, code_b = codes.split([a.shape[0], b.shape[0]])
        return {side: self.model.split_output(self.model.decoders[side](code)) for side, code in zip(SIDES, (code_a, code_b))}


def compute_loss(model: SwapModel, outputs: tuple[torch.Tensor, torch.Tensor | None], batch: dict[str, torch.Tensor], side: str) -> torch.Tensor:
    face, mask = outputs
    target = batch[f"{side}_target"]
    if model.loss == "l1":
        return l1_loss(face.float(), target)
    return face_loss(face, mask, target, batch[f"{side}_mask"], batch[f"{side}_priority"])


def weights_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


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
        return lambda: [signal.signal(sig, old) for sig, old in previous.items()]  # type: ignore[func-returns-value]


def _trim_log(path: Path, iteration: int) -> None:
    """On resume, drop log rows past the checkpoint: those steps will be run (and logged) again."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["iteration"]) <= iteration]
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


def train(
    model_dir: Path,
    config: TrainConfig | None,
    options: RunOptions,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train (or resume) the model in ``model_dir``. Single process, or one rank of a torchrun job."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(options.device, local_rank)
    distributed = world_size > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(model_dir, config, options, on_step, device, rank, world_size)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    model_dir: Path,
    given: TrainConfig | None,
    options: RunOptions,
    on_step: Callable[[int, dict[str, float]], None] | None,
    device: torch.device,
    rank: int,
    world_size: int,
) -> RunResult:
    config = resolve_config(model_dir, given)
    is_main = rank == 0
    if is_main:
        model_dir.mkdir(parents=True, exist_ok=True)
        if not (model_dir / CONFIG).is_file():
            write_json_atomically(model_dir / CONFIG, asdict(config))
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    spec = model.spec
    working = int(math.ceil(spec.size / spec.coverage))
    pools = {side: load_pool(Path(path), working) for side, path in zip(SIDES, (config.faceset_a, config.faceset_b))}
    splits = {side: split_pool(pool, config.holdout, config.seed) for side, pool in pools.items()}
    train_pools = {side: split[0] for side, split in splits.items()}
    held_out = {side: held_out_batch(split[1], spec, limit=64) for side, split in splits.items()}

    model = model.to(device).to(memory_format=memory_format(device))
    optimizer = make_optimizer(model, device, config.learning_rate)
    iteration = 0
    trained_before = 0.0
    checkpoints = complete_checkpoints(model_dir)
    if checkpoints:
        state = load_checkpoint(checkpoints[-1], model, optimizer)
        iteration = int(state["iteration"])
        trained_before = float(state.get("train_seconds", 0.0))
        if "torch_rng" in state:
            torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    if is_main:
        _trim_log(model_dir / "losses.csv", iteration)
    dtype = choose_precision(options.precision, device)
    quality = QualityLog(model_dir, config, spec) if options.evaluate_every and is_main else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    step_module: nn.Module = PairStep(model)
    if world_size > 1:
        step_module = nn.parallel.DistributedDataParallel(step_module, device_ids=[device.index] if device.type == "cuda" else None)

    stop_at = options.iterations if options.iterations is not None else iteration + 10**9
    if options.iterations is None and options.minutes is None:
        raise FacetwinError("give --iterations or --minutes (or both)")
    deadline = None if options.minutes is None else time.monotonic() + options.minutes * 60
    loader = DataLoader(
        PairDataset(train_pools, spec, config.seed, config.augment),
        batch_size=config.batch_size,
        sampler=StepSampler(iteration, max(stop_at, iteration), config.batch_size, rank, world_size),
        num_workers=options.workers,
        worker_init_fn=worker_init if options.workers else None,
        persistent_workers=False,
        # fork would copy a process that already runs MediaPipe, OpenMP and TensorBoard threads, and a
        # forked child can deadlock on a lock one of them held; spawned workers start clean.
        multiprocessing_context="spawn" if options.workers else None,
        prefetch_factor=4 if options.workers else None,
        pin_memory=device.type == "cuda",
    )
    writer = None
    if is_main:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(model_dir / "tb"), purge_step=iteration + 1)
    stop = _StopFlag()
    restore_signals = stop.install() if is_main or world_size == 1 else (lambda: None)
    result = RunResult(iteration, "finished", checkpoints[-1] if checkpoints else None)
    started = time.monotonic()
    last_save_state = {"seed": config.seed}

    def save(reason: str) -> None:
        if is_main:
            state = {**last_save_state, "reason": reason, "torch_rng": torch.get_rng_state().tolist(), "world_size": world_size,
                     "train_seconds": round(trained_before + time.monotonic() - started, 3)}  # fmt: skip
            result.checkpoint = save_checkpoint(model_dir, iteration, model, optimizer, state, options.keep)

    log_handle = None
    log_writer = None
    if is_main:
        new_log = not (model_dir / "losses.csv").is_file()
        log_handle = open(model_dir / "losses.csv", "a", newline="", buffering=1)  # line-buffered: watchable live
        log_writer = csv.DictWriter(log_handle, LOG_FIELDS)
        if new_log:
            log_writer.writeheader()
    if is_main and log_writer is not None and iteration == 0:
        result.initial_heldout_l1 = evaluate_held_out(model, held_out, device)
        log_writer.writerow({"iteration": 0, "elapsed_s": 0.0, **{f"heldout_l1_{k}": f"{v:.6f}" for k, v in result.initial_heldout_l1.items()}})
    wait_time = 0.0
    step_time = 0.0
    try:
        batches = iter(loader)
        while iteration < stop_at:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if _agree(out_of_time or stop.reason is not None, world_size, device):
                result.stopped_because = "interrupted" if stop.reason else "time limit"
                break
            t0 = time.perf_counter()
            batch = next(batches)
            batch = {key: to_model_input(value, device) if value.dim() == 4 else value.to(device) for key, value in batch.items()}
            t1 = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                outputs = step_module(batch["a_source"], batch["b_source"])
                losses = {side: compute_loss(model, outputs[side], batch, side) for side in SIDES}
            total = losses["a"] + losses["b"]
            if not _agree(not bool(torch.isfinite(total.detach())), world_size, device):
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                last = result.checkpoint.name if result.checkpoint else "none yet"
                raise NonFiniteLoss(
                    f"loss became {total.item()} at iteration {iteration + 1}; stopped, the last good checkpoint"
                    f" ({last}) is kept in {model_dir / 'checkpoints'}"
                )
            iteration += 1
            t2 = time.perf_counter()
            wait_time += t1 - t0
            step_time += t2 - t0
            values = {"loss_a": losses["a"].item(), "loss_b": losses["b"].item()}
            result.last_losses = (values["loss_a"], values["loss_b"])
            images_per_s = 2 * config.batch_size * world_size / max(t2 - t0, 1e-9)
            values["images_per_s"] = images_per_s
            if is_main and log_writer is not None and writer is not None:
                row: dict[str, Any] = {"iteration": iteration, "elapsed_s": round(time.monotonic() - started, 3),
                                       "loss_a": f"{values['loss_a']:.6f}", "loss_b": f"{values['loss_b']:.6f}",
                                       "images_per_s": f"{images_per_s:.2f}", "data_wait": f"{(t1 - t0) / max(t2 - t0, 1e-9):.4f}"}  # fmt: skip
                if iteration % options.preview_every == 0 or iteration == stop_at:
                    result.heldout_l1 = evaluate_held_out(model, held_out, device)
                    row.update({f"heldout_l1_{side}": f"{value:.6f}" for side, value in result.heldout_l1.items()})
                    write_preview(model, held_out, device, model_dir / "previews" / f"{iteration:09d}.png")
                    for side, value in result.heldout_l1.items():
                        writer.add_scalar(f"heldout_l1/{side}", value, iteration)
                if options.evaluate_every and iteration % options.evaluate_every == 0:
                    for name, value in quality.record(model, device, dtype, f"{config.model}@{iteration}", iteration).items():
                        writer.add_scalar(f"quality/{name}", value, iteration)
                log_writer.writerow(row)
                writer.add_scalar("loss/a", values["loss_a"], iteration)
                writer.add_scalar("loss/b", values["loss_b"], iteration)
                writer.add_scalar("images_per_s", images_per_s, iteration)
            if on_step is not None and is_main:
                on_step(iteration, values)
            if iteration % options.save_every == 0:
                if log_handle is not None:
                    log_handle.flush()
                save("periodic")
        if iteration > 0 and (result.checkpoint is None or int(result.checkpoint.name) != iteration):
            save(result.stopped_because)  # unless this very step was just saved
        preview = model_dir / "previews" / f"{iteration:09d}.png"
        if is_main and iteration > 0 and not preview.is_file():  # a run always ends with a look at where it got
            result.heldout_l1 = evaluate_held_out(model, held_out, device)
            write_preview(model, held_out, device, preview)
    finally:
        restore_signals()
        if log_handle is not None:
            log_handle.close()
        if writer is not None:
            writer.close()
    result.iteration = iteration
    if world_size > 1:
        digests: list[str | None] = [None] * world_size
        dist.all_gather_object(digests, weights_digest(model))
        if len(set(digests)) != 1:
            raise FacetwinError(f"ranks disagree on the weights after training: {digests}")
        if is_main and result.checkpoint is not None:
            write_json_atomically(result.checkpoint / "ranks.json", {"world_size": world_size, "digests": digests})
    result.data_wait_fraction = wait_time / step_time if step_time else 0.0
    return result


def _agree(flag: bool, world_size: int, device: torch.device) -> bool:
    """True on every rank when any rank says True, so all ranks stop (or skip) together."""
    if world_size == 1:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


@torch.no_grad()
def evaluate_held_out(model: SwapModel, held_out: dict[str, dict[str, torch.Tensor]], device: torch.device) -> dict[str, float]:
    """Masked L1 of each identity's held-out faces rebuilt by its own decoder."""
    was_training = model.training
    model.eval()
    scores = {}
    for side in SIDES:
        batch = held_out[side]
        face, _ = model(to_model_input(batch["source"], device), side)
        scores[side] = float(masked_l1(face.cpu(), batch["target"], batch["mask"]))
    model.train(was_training)
    return scores
