"""Every setting a user can give, declared once: its default, its help line, and whether it is fixed.

The stages take these dataclasses; the command line (and the studio) read their defaults and help from
here, so a default is written in one place only. A ``fixed`` setting of ``TrainConfig`` belongs to the
model's architecture or to its held-out split and cannot change once a model folder exists; the others
may change on resume and are applied and logged (``facetwin.modeldir.ModelDir.resume``). This module
imports nothing heavy, so ``facetwin --help`` stays quick.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def setting(default: Any, help: str, fixed: bool = False) -> Any:  # noqa: A002 - "help" is the word the CLI uses
    """A dataclass field with a default and the help line the command line shows for it."""
    return field(default=default, metadata={"help": help, "fixed": fixed})


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    for item in dataclasses.fields(cls):
        if item.name == name:
            return item
    raise KeyError(f"{cls.__name__} has no setting {name!r}")


def help_of(cls: type, name: str, show_default: bool = False) -> str:
    """The help line of setting ``name`` of option class ``cls`` (with its default when asked)."""
    text: str = _field(cls, name).metadata.get("help", "")
    return f"{text} (default {default_of(cls, name)})" if show_default else text


def default_of(cls: type, name: str) -> Any:
    item = _field(cls, name)
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def fixed_settings(cls: type) -> tuple[str, ...]:
    """Names of the settings declared ``fixed``."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("fixed"))


@dataclass(frozen=True)
class ExtractOptions:
    every: int = setting(1, "Take every N-th video frame.")
    min_face: int = setting(40, "Ignore faces smaller than this many pixels.")
    max_faces: int = setting(4, "At most this many faces per frame, largest first.")
    size: int = setting(256, "Aligned crop size in pixels.")
    identity: tuple[str, ...] = setting((), "Keep only the faces of the person in this reference image (repeat for more images).")
    not_identity: tuple[str, ...] = setting((), "Leave out the faces of the person in this reference image (repeat for more).")
    identity_distance: float = setting(0.6, "Largest identity distance (dlib) from a reference that counts as the same person.")


@dataclass(frozen=True)
class PeopleOptions:
    """``facetwin faceset identities``: how faces are grouped into people."""

    distance: float = setting(0.5, "A track joins a person whose centre is within this identity distance (dlib units).")


@dataclass(frozen=True)
class SortOptions:
    """``facetwin faceset sort``: the review order and what to drop from it."""

    by: str = setting("blur", "What to sort by, worst first.")
    show: int = setting(200, "Faces on the review sheet.")
    drop_worst: int = setting(0, "Drop the N worst faces of this order (recoverably).")
    drop_duplicates: bool = setting(False, "Drop every face that is a near-duplicate of one before it (recoverably).")


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation, as in the 2017 deepfakes code: rotate, zoom, shift, flip and colour both input and
    target; randomly warp the input only (a jittered 5x5 grid)."""

    rotation_deg: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: bool = True
    warp_grid: int = 5
    warp_scale: float = 0.025  # std of the grid jitter, as a share of the output size
    brightness: float = 0.08
    contrast: float = 0.1
    saturation: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Settings stored with a model in its config.json. ``fixed`` ones cannot change on resume."""

    faceset_a: str
    faceset_b: str
    model: str = setting("original", "Architecture (see the list above).", fixed=True)
    batch_size: int = setting(16, "Faces per identity per step.")
    seed: int = setting(0, "Seed for the weights, the held-out split and the augmentation.", fixed=True)
    holdout: float = setting(0.05, "Share of one-second segments held out for scoring.", fixed=True)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    learning_rate: float | None = setting(None, "Adam's learning rate (default: the model's own).")
    balance: str = setting("none", "Which faces training draws: none (uniformly) or expression (rare eye, mouth and gaze"
                                   " states more often, as DeepFaceLab balances head yaw).")
    eye_multiplier: float = setting(3.0, "Loss weight of the eyes and brows against the rest of the face (as faceswap's"
                                         " eye multiplier).")
    mouth_multiplier: float = setting(3.0, "Loss weight of the mouth against the rest of the face (as faceswap's mouth"
                                           " multiplier).")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**{**values, "augment": AugmentSettings(**data.get("augment", {}))})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunOptions:
    """Settings of one training run only (not stored)."""

    iterations: int | None = setting(None, "Train until this total iteration count.")
    minutes: float | None = setting(None, "Stop after this many minutes of this run.")
    save_every: int = setting(500, "Checkpoint every N iterations.")
    preview_every: int = setting(250, "Preview PNG and held-out score every N iterations.")
    keep: int = setting(3, "Checkpoints kept as backups.")
    device: str = setting("auto", "auto, cpu or cuda.")
    precision: str = setting("auto", "auto, fp32, bf16 or fp16.")
    workers: int = setting(1, "DataLoader worker processes for augmentation.")
    evaluate_every: int | None = setting(None, "Identity and reconstruction metrics every N iterations (quality.csv, plotted).")


@dataclass(frozen=True)
class BlendOptions:
    """How a swapped face is put back: mask, colour match and blend (each a registry choice)."""

    mask: str = setting("both", "Blend mask.")
    erode: int = setting(0, "Shrink the mask by N model pixels (negative grows it).")
    feather: int = setting(6, "Feather radius in model pixels.")
    colour: str = setting("histogram", "Colour match (histogram leaves the least visible seam: bench/convert.py).")
    blend: str = setting("feather", "Blend.")
    restore: str = setting("none", "Keep the source's own eyes and/or mouth while its expression leaves the common range"
                           " (a blink, a wide-open mouth); mouth and both also close the swap's lips where they part more"
                           " than the source's: none, eyes, mouth or both.")


@dataclass(frozen=True)
class ConvertOptions:
    direction: str = setting("a2b", "a2b: faces of A become B; b2a: the reverse.")
    blend: BlendOptions = field(default_factory=BlendOptions)
    crf: int = setting(18, "H.264 quality: lower is better and larger.")
    side_by_side: bool = setting(False, "Write original and swapped side by side.")
    batch_size: int = setting(16, "Faces per model call (11.3 ms a face at 16, 12.4 at 8: bf16, 2 cores).")
    smooth: bool = setting(True, "Smooth landmarks over time (One-Euro filter).")
    max_faces: int = setting(8, "Swap at most this many faces per frame, largest first.")
    device: str = setting("auto", "auto, cpu or cuda.")
    precision: str = setting("auto", "auto, fp32, bf16 or fp16.")
    identity: tuple[str, ...] = setting((), "Swap the person in this reference image instead of the model's (repeat for more images).")
    all_faces: bool = setting(False, "Swap every face, whoever it is.")
    identity_distance: float = setting(0.6, "Largest identity distance (dlib) from the person that counts as them.")


@dataclass(frozen=True)
class EvaluateOptions:
    faces: int = setting(64, "Held-out faces per identity to score.")
    direction: str = setting("a2b", "For --video: a2b (the clip shows A) or b2a.")
    device: str = setting("auto", "auto, cpu or cuda.")
    identity: tuple[str, ...] = setting((), "For --video: swap and measure the person in this reference image.")
    all_faces: bool = setting(False, "For --video: swap and measure every face.")
    restore: str = setting("none", "For --video: convert with this --restore (none, eyes, mouth, both) and measure it.")
