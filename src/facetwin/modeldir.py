"""The model folder: one type that owns its layout, its config, its checkpoints and its held-out split.

Layout (nothing outside this module spells it out)::

    MODEL_DIR/
      config.json          TrainConfig, format_version, mean_face_sha256
      checkpoints/<9-digit iteration>/   model.safetensors, optimizer.safetensors, state.json
      previews/<9-digit iteration>.png   held-out faces: A, A rebuilt, A as B, B, B rebuilt, B as A
      losses.csv           one row per step; held-out scores at preview steps
      quality.csv          train --evaluate-every: identity and reconstruction metrics
      runs.jsonl           one line per training run: when, from which iteration, settings changed
      tb/                  TensorBoard events
      people.json          who A and B are: each side's identity centre (dlib, 128-d), made on first use

Format versions: 1 had no ``format_version`` (before 2026-11-30) and is migrated in place, atomically,
on first open, taking the current mean-face template as the one it was aligned with (it was the only
one). 2 adds ``format_version`` and ``mean_face_sha256``: a model is only valid with the template its
faces were aligned to, so opening one made with another template is an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facetwin.atomic import write_json_atomically
from facetwin.errors import FacetwinError
from facetwin.facepool import SplitPool, load_pool, split_pool, working_size
from facetwin.faces.align import mean_face_sha256
from facetwin.models.registry import MODELS
from facetwin.options import TrainConfig, fixed_settings

if TYPE_CHECKING:
    from facetwin.faces.identity import FaceEmbedder

MODEL_FORMAT = 2
SIDES = ("a", "b")
PrepareCallback = Callable[[str, int, int], None]  # (what, done, total) while a run prepares its data
ChangesCallback = Callable[[list[str]], None]  # the settings a resume changes, one line each


@dataclass(frozen=True)
class Resumed:
    """A stored config with this run's changes applied, and one line per change for the user."""

    config: TrainConfig
    changes: list[str]


class ModelDir:
    """A model folder at ``root`` (which may not exist yet)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config_path = self.root / "config.json"
        self.checkpoints_dir = self.root / "checkpoints"
        self.previews_dir = self.root / "previews"
        self.losses_csv = self.root / "losses.csv"
        self.quality_csv = self.root / "quality.csv"
        self.runs_log = self.root / "runs.jsonl"
        self.tb_dir = self.root / "tb"
        self.people_path = self.root / "people.json"

    def __repr__(self) -> str:
        return f"ModelDir({str(self.root)!r})"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def preview_path(self, iteration: int) -> Path:
        return self.previews_dir / f"{iteration:09d}.png"

    def previews(self) -> list[Path]:
        return sorted(self.previews_dir.glob("*.png"))

    # config ------------------------------------------------------------------------------------------

    def read_config(self) -> TrainConfig:
        """The stored config. Migrates format 1 in place; raises FacetwinError for a missing folder, a
        newer format, or a model aligned to another mean-face template."""
        if not self.exists():
            raise FacetwinError(f"{self.root}: no model here (no config.json); train one first:"
                                f" facetwin train FACESET_A FACESET_B -m {self.root}")
        try:
            data: dict[str, Any] = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as exc:
            raise FacetwinError(f"{self.config_path}: unreadable model config ({exc})") from exc
        version = int(data.get("format_version", 1))
        if version > MODEL_FORMAT:
            raise FacetwinError(f"{self.root}: model folder format {version} is newer than this facetwin reads"
                                f" ({MODEL_FORMAT}); upgrade facetwin")
        if version < MODEL_FORMAT:
            data = {**data, "format_version": MODEL_FORMAT, "mean_face_sha256": mean_face_sha256()}
            write_json_atomically(self.config_path, data)
        if data.get("mean_face_sha256") != mean_face_sha256():
            raise FacetwinError(f"{self.root}: this model was trained on faces aligned to another mean-face template"
                                f" ({str(data.get('mean_face_sha256'))[:12]}, this facetwin has {mean_face_sha256()[:12]});"
                                " its swaps would be misaligned: retrain it")
        return TrainConfig.from_json(data)

    def create(self, config: TrainConfig) -> TrainConfig:
        """Start a new model folder with ``config``. The model name is checked before anything is written."""
        MODELS[config.model]  # raises, naming the choices, before the folder exists
        if self.exists():
            raise FacetwinError(f"{self.root}: a model already lives here")
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.config_path, {"format_version": MODEL_FORMAT, "mean_face_sha256": mean_face_sha256(),
                                                 **config.to_json()})
        return config

    def resume(self, given: Mapping[str, Any], write: bool = True) -> Resumed:
        """The stored config with the settings the user gave for this run (names of TrainConfig fields;
        ``None`` means not given). A changed fixed setting (the architecture, the seed, the held-out share)
        raises FacetwinError naming it, before anything is written; other changes are stored (unless
        ``write`` is False: the other ranks of a DDP run) and listed."""
        stored = self.read_config()
        current = stored.to_json()
        changed = {k: v for k, v in given.items() if v is not None and current.get(k) != v}
        for name in fixed_settings(TrainConfig):
            if name in changed:
                raise FacetwinError(f"{self.root}: --{name.replace('_', '-')} is {current[name]!r} for this model and"
                                    f" cannot change ({changed[name]!r} given); start a new model folder for that")
        if not changed:
            return Resumed(stored, [])
        updated = replace(stored, **changed)
        if write:
            data = json.loads(self.config_path.read_text())
            write_json_atomically(self.config_path, {**data, **updated.to_json()})
        return Resumed(updated, [f"{k.replace('_', ' ')}: {current[k]} -> {v}" for k, v in changed.items()])

    def log_run(self, record: Mapping[str, Any]) -> None:
        """Append one line to runs.jsonl (a history of the runs and of the settings each changed)."""
        with open(self.runs_log, "a") as handle:
            handle.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}) + "\n")

    # checkpoints -------------------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        from facetwin.checkpoint import complete_checkpoints

        return complete_checkpoints(self.checkpoints_dir)

    def latest_checkpoint(self) -> Path:
        """The newest complete checkpoint; raises FacetwinError when there is none."""
        found = self.checkpoints()
        if not found:
            raise FacetwinError(f"{self.root}: no checkpoint yet; train the model first")
        return found[-1]

    def trained_seconds(self) -> float:
        """Wall-clock seconds of training so far, over every run (0 before the first checkpoint)."""
        from facetwin.checkpoint import read_state

        found = self.checkpoints()
        return float(read_state(found[-1]).get("train_seconds", 0.0)) if found else 0.0

    # faces -------------------------------------------------------------------------------------------

    def people(self, embedder: FaceEmbedder | None = None) -> dict[str, np.ndarray]:
        """Who A and B are: side -> the identity centre (128 float32) of the main person among that side's
        training faces (``identities.training_centre``). Computed from the face sets on first use (their
        missing identities filled) and kept in people.json. Raises FacetwinError when it is not kept yet
        and a face set cannot be read."""
        if self.people_path.is_file():
            try:
                data = json.loads(self.people_path.read_text())
                return {side: np.array(data["centres"][side], np.float32) for side in SIDES}
            except (OSError, ValueError, KeyError) as exc:
                raise FacetwinError(f"{self.people_path}: unreadable ({exc}); delete it to compute it again") from exc
        from facetwin.identities import training_centre

        config = self.read_config()
        centres = {side: training_centre(self.faceset(side, config), config.seed, config.holdout, embedder) for side in SIDES}
        write_json_atomically(self.people_path, {"centres": {side: [round(float(v), 7) for v in c] for side, c in centres.items()},
                                                 "facesets": {side: str(self.faceset(side, config)) for side in SIDES}})
        return centres

    def faceset(self, side: str, config: TrainConfig | None = None) -> Path:
        config = config or self.read_config()
        return Path(config.faceset_a if side == "a" else config.faceset_b)

    def load_faces(self, size: int, coverage: float, config: TrainConfig | None = None,
                   progress: PrepareCallback | None = None) -> dict[str, SplitPool]:
        """Both identities' faces at the working size for (size, coverage), split by this model's seed and
        held-out share: the same faces for training, previews, ``facetwin evaluate`` and the benches.
        ``progress(description, done, total)`` is called while a face set's training cache is built."""
        config = config or self.read_config()
        working = working_size(size, coverage)
        faces = {}
        for side in SIDES:
            report = (lambda done, total, s=side: progress(f"caching faces of {s.upper()}", done, total)) if progress else None
            faces[side] = split_pool(load_pool(self.faceset(side, config), working, report), config.seed, config.holdout)
        return faces
