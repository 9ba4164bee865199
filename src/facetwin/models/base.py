"""The model contract: what every swap model offers the trainer, the swapper and the evaluator.

A model is a shared encoder and one decoder per identity (``a`` and ``b``). It owns:

- ``forward(x, side)``: faces (N, 3, S, S) in [0, 1] in, ``ModelOutput`` out (that side's decoder);
- ``forward_pair(a, b)``: one training forward for both identities (the encoder sees A and B in one
  batch, each decoder its own half);
- ``loss(outputs, batch)``: the loss of each side, from its ``criterion`` (models.losses);
- ``configure_optimizer(device, learning_rate)``: its optimizer at its own settings;
- ``spec``: the facts the pipeline needs (input size, crop coverage, whether a mask is predicted).

The trainer calls these and nothing else of a model (no reaching into encoders or decoders), so a new
architecture is one new module and one registry entry (models.registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from facetwin.models.losses import Criterion

SIDES = ("a", "b")


@dataclass(frozen=True)
class ModelSpec:
    """Facts the rest of the pipeline needs about a model."""

    name: str
    size: int  # input and output side in pixels
    coverage: float  # share of the aligned crop's width that the model sees, centred (0-1)
    has_mask: bool  # whether the decoder predicts a face mask as a fourth channel


class ModelOutput(NamedTuple):
    """A decoder's output: face (N, 3, S, S) in [0, 1] and mask (N, 1, S, S) in [0, 1], or None for models
    that predict no mask."""

    face: torch.Tensor
    mask: torch.Tensor | None


class SwapModel(nn.Module):
    """A shared encoder and two decoders, ``a`` and ``b`` (see the module docstring for the contract)."""

    spec: ClassVar[ModelSpec]
    criterion: ClassVar[Criterion]
    learning_rate: ClassVar[float]
    betas: ClassVar[tuple[float, float]] = (0.9, 0.999)

    def __init__(self, encoder: nn.Module, decoder_a: nn.Module, decoder_b: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict({"a": decoder_a, "b": decoder_b})

    def forward(self, x: torch.Tensor, side: str) -> ModelOutput:
        """Encode faces (N, 3, S, S) in [0, 1] and decode them with ``side``'s decoder."""
        return self._split(self.decoders[side](self.encoder(x)))

    def forward_pair(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, ModelOutput]:
        """Each identity's faces rebuilt by its own decoder, with one encoder pass over both."""
        codes = self.encoder(torch.cat([a, b]))
        code_a, code_b = codes.split([a.shape[0], b.shape[0]])
        return {side: self._split(self.decoders[side](code)) for side, code in zip(SIDES, (code_a, code_b))}

    def loss(self, outputs: Mapping[str, ModelOutput], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each side's loss (a scalar tensor) against ``batch``'s ``{side}_target`` (N, 3, S, S),
        ``{side}_mask`` (face hull, in [0, 1]) and ``{side}_priority`` (the eyes' and mouth's extra loss weight,
        >= 0), each (N, 1, S, S)."""
        return {
            side: self.criterion(out.face, out.mask, batch[f"{side}_target"], batch[f"{side}_mask"], batch[f"{side}_priority"])
            for side, out in outputs.items()
        }  # fmt: skip

    def configure_optimizer(self, device: torch.device, learning_rate: float | None = None) -> torch.optim.Optimizer:
        """Adam at the model's own learning rate (or ``learning_rate``) and betas. Fused (one kernel over all
        parameters) on CPU and CUDA: the per-tensor foreach version spent ~0.3 s of a ~2 s step of
        ``original`` on the CPU, the fused one ~0.05 s (bench/train.py)."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        return torch.optim.Adam(self.parameters(), lr=lr, betas=self.betas, fused=device.type in ("cpu", "cuda"))

    def _split(self, out: torch.Tensor) -> ModelOutput:
        """Decoder logits to (face, mask): sigmoid on both, mask only where the model has one."""
        if self.spec.has_mask:
            return ModelOutput(torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4]))
        return ModelOutput(torch.sigmoid(out), None)


class PairForward(nn.Module):
    """``forward_pair`` as a module's forward, so DistributedDataParallel can wrap it and reduce both
    decoders' gradients in one backward."""

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, ModelOutput]:
        return self.model.forward_pair(a, b)
