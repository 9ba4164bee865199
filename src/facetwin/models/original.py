"""The 2017 deepfakes model, exactly: 64 px, ~82.06 M parameters (DESIGN.md section 5)."""

from __future__ import annotations

from torch import nn

from facetwin.models.base import ModelSpec, SwapModel
from facetwin.models.blocks import Dense, Downscale, Upscale


def _encoder(w: int) -> nn.Sequential:
    return nn.Sequential(
        Downscale(3, w), Downscale(w, 2 * w), Downscale(2 * w, 4 * w), Downscale(4 * w, 8 * w),
        Dense((8 * w, 4, 4), 8 * w, (8 * w, 4, 4)),
        Upscale(8 * w, 4 * w),
    )  # fmt: skip


def _decoder(w: int) -> nn.Sequential:
    return nn.Sequential(Upscale(4 * w, 2 * w), Upscale(2 * w, w), Upscale(w, w // 2), nn.Conv2d(w // 2, 3, 5, padding=2))


class Original(SwapModel):
    """Encoder: 4 strided convs (128-1024) -> Dense 1024 -> Dense 4x4x1024 -> upscale to 8x8x512.
    Decoders: upscale 256, 128, 64 -> 5x5 conv to RGB, sigmoid. Trained with L1, Adam 5e-5 (0.5, 0.999).

    ``width`` is the first convolution's channel count, which every other layer's is a multiple of
    (128 in 2017); ``lightweight`` is this network at half of it."""

    spec = ModelSpec(name="original", size=64, coverage=0.625, has_mask=False)
    width = 128
    loss = "l1"
    learning_rate = 5e-5
    betas = (0.5, 0.999)

    def __init__(self) -> None:
        super().__init__(_encoder(self.width), _decoder(self.width), _decoder(self.width))
