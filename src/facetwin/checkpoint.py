"""Checkpoints: safetensors for tensors (never pickle), JSON for the rest, written so none is ever half there.

A checkpoint is a folder ``<iteration, 9 digits>`` holding ``model.safetensors``,
``optimizer.safetensors`` and ``state.json``. It is written under a temporary name, every file is
fsynced, and only then is the folder renamed into place (and the parent fsynced): a run killed at any
moment leaves either the complete new checkpoint or none, and the previous ones untouched. The newest
``keep`` are kept as backups. ``facetwin.modeldir.ModelDir`` says where the folder is.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from facetwin.atomic import fsync_path
from facetwin.errors import FacetwinError

STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
RUN_CHOICES = ("fused", "foreach", "capturable", "differentiable")  # optimizer settings that are not hyperparameters


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    folder: Path, iteration: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], keep: int
) -> Path:
    """Write checkpoint ``iteration`` into ``folder`` (created if needed) and keep only the newest ``keep``.

    Returns the checkpoint's path. Raises OSError when it cannot be written (the earlier ones stay)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{iteration:09d}"
    partial = folder / f".{iteration:09d}.tmp"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    weights = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(weights, partial / MODEL)
    tensors, extra = _optimizer_tensors(optimizer)
    save_file(tensors, partial / OPTIMIZER)
    with open(partial / STATE, "w") as handle:
        json.dump({**state, "iteration": iteration, "optimizer": extra}, handle, indent=2)
    for name in (MODEL, OPTIMIZER, STATE):
        fsync_path(partial / name)
    if final.exists():
        shutil.rmtree(final)
    os.rename(partial, final)
    fsync_path(folder)
    for old in complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoint folders in ``folder``, oldest first (temporary ones from a killed run are ignored)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit() and (p / STATE).is_file()]
    return sorted(found, key=lambda p: int(p.name))


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint's state.json without the optimizer part (iteration, train_seconds, rng, ...)."""
    try:
        state: dict[str, Any] = json.loads((path / STATE).read_text())
    except (OSError, ValueError) as exc:
        raise FacetwinError(f"{path}: checkpoint cannot be read ({exc})") from exc
    state.pop("optimizer", None)
    return state


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Load weights (and optimizer state) in place; returns the saved state without the optimizer part.

    The optimizer's run choices (fused, foreach) stay this run's: a run may resume another's checkpoint
    on another device, or one written before Adam was fused. Raises FacetwinError naming the checkpoint
    when it cannot be loaded."""
    try:
        with open(path / STATE) as handle:
            state = json.load(handle)
        model.load_state_dict(load_file(path / MODEL))
        if optimizer is not None:
            tensors = load_file(path / OPTIMIZER)
            extra = state["optimizer"]
            per_param: dict[int, dict[str, Any]] = {}
            for key, value in tensors.items():
                index, name = key.split(".", 1)
                per_param.setdefault(int(index), {})[name] = value
            for index, values in extra["scalars"].items():
                per_param.setdefault(int(index), {}).update(values)
            groups = [
                {**saved, **{key: live[key] for key in RUN_CHOICES if key in live}}
                for saved, live in zip(extra["param_groups"], optimizer.param_groups, strict=True)
            ]
            optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise FacetwinError(f"{path}: checkpoint cannot be loaded ({exc})") from exc
    state.pop("optimizer", None)
    return state
