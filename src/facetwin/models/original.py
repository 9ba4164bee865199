"""The 2017 deepfakes model, exactly: 64 px, ~82.06 M parameters (DESIGN.md section 5)."""

from __future__ import annotations

from torch import nn

from facetwin.models.base import ModelSpec, SwapModel
from facetwin.models.blocks import Dense, Downscale, Upscale


def _decoder() -> nn.Sequential:
    return nn.Sequential(Upscale(512, 256), Upscale(256, 128), Upscale(128, 64), nn.Conv2d(64, 3, 5, padding=2))


class Original(SwapModel):
    """Encoder: 4 strided convs (128-1024) -> Dense 1024 -> Dense 4x4x1024 -> upscale to 8x8x512.
    Decoders: upscale 256, 128, 64 -> 5x5 conv to RGB, sigmoid. Trained with L1, Adam 5e-5 (0.5, 0.999)."""

    spec = ModelSpec(name="original", size=64, coverage=0.625, has_mask=False)
    learning_rate = 5e-5
    betas = (0.5, 0.999)

    def __init__(self) -> None:
        encoder = nn.Sequential(
            Downscale(3, 128), Downscale(128, 256), Downscale(256, 512), Downscale(512, 1024),
            Dense((1024, 4, 4), 1024, (1024, 4, 4)),
            Upscale(1024, 512),
        )  # fmt: skip
        super().__init__(encoder, _decoder(), _decoder())
