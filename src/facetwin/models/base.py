"""What every swap model offers the trainer and the converter."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Facts the rest of the pipeline needs: input size, crop coverage, whether a mask is predicted."""

    name: str
    size: int
    coverage: float  # share of the 256 px aligned crop's width that the model sees, centred
    has_mask: bool


class SwapModel(nn.Module):
    """A shared encoder and two decoders, ``a`` and ``b``. ``forward(x, side)`` decodes with that side.

    Output: (face, mask) with face in [0, 1] (N, 3, S, S) and mask in [0, 1] (N, 1, S, S) or None.
    """

    spec: ModelSpec
    loss: str = "face"  # "l1": plain L1 (the 2017 model); "face": SSIM + L1 weighted to face, eyes and mouth

    def __init__(self, encoder: nn.Module, decoder_a: nn.Module, decoder_b: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict({"a": decoder_a, "b": decoder_b})

    def forward(self, x: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.split_output(self.decoders[side](self.encoder(x)))

    def split_output(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder logits to (face, mask): sigmoid on both, mask only where the model has one."""
        if self.spec.has_mask:
            return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4])
        return torch.sigmoid(out), None
