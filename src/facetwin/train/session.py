"""Everything a training run sets up before its first step: the config (new, or stored with this run's
changes), the model and optimizer (resumed from the newest checkpoint), the faces and their split, and
the data loader. ``trainer.train`` runs the loop over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from facetwin.checkpoint import load_checkpoint
from facetwin.devices import choose_precision, place_model, to_model_input
from facetwin.errors import FacetwinError
from facetwin.facepool import SplitPool
from facetwin.modeldir import ChangesCallback, ModelDir, PrepareCallback
from facetwin.models.base import SwapModel
from facetwin.models.registry import build_model
from facetwin.options import RunOptions, TrainConfig
from facetwin.train.data import PairDataset, StepSampler, collate_pairs, worker_init
from facetwin.train.worker_server import worker_context


@dataclass
class Session:
    """The state of one training run (one rank of a torchrun job)."""

    model_dir: ModelDir
    config: TrainConfig
    model: SwapModel
    optimizer: torch.optim.Optimizer
    faces: dict[str, SplitPool]
    device: torch.device
    dtype: torch.dtype
    rank: int = 0
    world_size: int = 1
    iteration: int = 0
    trained_before: float = 0.0  # seconds of training in earlier runs
    checkpoint: Path | None = None  # the newest checkpoint written or resumed from
    changes: list[str] = field(default_factory=list)  # settings this run changed, for the user

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def to_device(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A loader batch on the run's device, images in the layout the model runs fastest in."""
        return {key: to_model_input(value, self.device) if value.dim() == 4 else value.to(self.device)
                for key, value in batch.items()}  # fmt: skip


def open_config(model_dir: ModelDir, given: TrainConfig | Mapping[str, Any] | None, write: bool) -> tuple[TrainConfig, list[str]]:
    """A new folder's config (``given`` must then be a TrainConfig), or the stored one with ``given``'s
    changes (a TrainConfig or a mapping of TrainConfig fields; None values mean "not given"). Only the
    main rank (``write``) creates or updates config.json; the others read it."""
    if not model_dir.exists():
        if not isinstance(given, TrainConfig):
            raise FacetwinError(f"{model_dir.root}: no model here yet; give FACESET_A and FACESET_B to start one")
        return (model_dir.create(given) if write else given), []
    changes = given.to_json() if isinstance(given, TrainConfig) else dict(given or {})
    resumed = model_dir.resume(changes, write)
    return resumed.config, resumed.changes


def open_session(
    model_dir: ModelDir, given: TrainConfig | Mapping[str, Any] | None, options: RunOptions, device: torch.device,
    rank: int, world_size: int, on_prepare: PrepareCallback | None = None,
    on_changes: ChangesCallback | None = None,
) -> Session:
    """Set up a run: config (``on_changes`` hears, on the main rank, the settings a resume changes, one
    line each, before anything slow), faces (split by the model's seed; ``on_prepare`` hears of the cache
    being built), model, optimizer, and the newest checkpoint."""
    config, changes = open_config(model_dir, given, write=rank == 0)
    if changes and rank == 0 and on_changes is not None:
        on_changes(changes)
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    faces = model_dir.load_faces(model.spec.size, model.spec.coverage, config, on_prepare)
    place_model(model, device)
    optimizer = model.configure_optimizer(device, config.learning_rate)
    session = Session(model_dir, config, model, optimizer, faces, device, choose_precision(options.precision, device),
                      rank, world_size, changes=changes)  # fmt: skip
    checkpoints = model_dir.checkpoints()
    if checkpoints:
        state = load_checkpoint(checkpoints[-1], model, optimizer)
        session.iteration, session.checkpoint = int(state["iteration"]), checkpoints[-1]
        session.trained_before = float(state.get("train_seconds", 0.0))
        if "torch_rng" in state:
            torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        for group in optimizer.param_groups:  # a learning rate given on resume wins over the checkpoint's
            group["lr"] = config.learning_rate if config.learning_rate is not None else model.learning_rate
    return session


def make_loader(session: Session, stop_at: int, workers: int) -> DataLoader[dict[str, torch.Tensor]]:
    """Augmented pairs for iterations ``session.iteration`` to ``stop_at`` of this rank, each batch packed
    into one tensor (``train.data.collate_pairs``; ``unpack_pairs`` gives its named parts)."""
    config = session.config
    pools = {side: split.train for side, split in session.faces.items()}
    return DataLoader(
        PairDataset(pools, session.model.spec, config.seed, config.augment, config.balance,
                    (config.eye_multiplier, config.mouth_multiplier)),
        batch_size=config.batch_size,
        collate_fn=collate_pairs,
        sampler=StepSampler(session.iteration, max(stop_at, session.iteration), config.batch_size, session.rank,
                            session.world_size),  # fmt: skip
        num_workers=workers,
        worker_init_fn=worker_init if workers else None,
        persistent_workers=False,
        multiprocessing_context=worker_context() if workers else None,
        prefetch_factor=4 if workers else None,
        pin_memory=session.device.type == "cuda",
    )
