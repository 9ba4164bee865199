"""The 2017 deepfakes model, exactly: 64 px, ~82.06 M parameters (the deepfakes/faceswap "Original" model)."""

from __future__ import annotations

from torch import nn

from facetwin.models.base import ModelSpec, SwapModel
from facetwin.models.blocks import Dense, Downscale, Upscale
from facetwin.models.losses import l1_loss


def _encoder(width: int, downscales: int) -> nn.Sequential:
    """Strided convolutions doubling the channels from ``width`` down to a 4x4 map, the dense bottleneck
    (as wide as the last convolution), and one upscale to 8x8 at half those channels."""
    channels = [width * 2**i for i in range(downscales)]
    top = channels[-1]
    return nn.Sequential(
        *(Downscale(c_in, c_out) for c_in, c_out in zip([3, *channels], channels)),
        Dense((top, 4, 4), top, (top, 4, 4)),
        Upscale(top, top // 2),
    )  # fmt: skip


def _decoder(width: int, downscales: int, out_channels: int) -> nn.Sequential:
    """Upscales halving the channels back to ``width // 2`` at the input size, then a 5x5 convolution."""
    top = width * 2 ** (downscales - 1)
    channels = [top // 2 ** (i + 1) for i in range(downscales)]  # 512, 256, 128, 64 in 2017
    return nn.Sequential(
        *(Upscale(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])),
        nn.Conv2d(channels[-1], out_channels, 5, padding=2),
    )  # fmt: skip


class Original(SwapModel):
    """Encoder: 4 strided convs (128-1024) -> Dense 1024 -> Dense 4x4x1024 -> upscale to 8x8x512.
    Decoders: upscale 256, 128, 64 -> 5x5 conv to RGB, sigmoid. Trained with L1, Adam 5e-5 (0.5, 0.999).

    ``width`` is the first convolution's channel count, which every other layer's is a multiple of
    (128 in 2017); ``lightweight`` is this network at half of it. ``downscales`` is how many halvings
    take the input to the 4x4 bottleneck (4 from 64 px); ``masked128`` is this network with one more."""

    spec = ModelSpec(name="original", size=64, coverage=0.625, has_mask=False)
    width = 128
    downscales = 4
    criterion = staticmethod(l1_loss)
    learning_rate = 5e-5
    betas = (0.5, 0.999)

    def __init__(self) -> None:
        out_channels = 4 if self.spec.has_mask else 3
        super().__init__(
            _encoder(self.width, self.downscales),
            _decoder(self.width, self.downscales, out_channels),
            _decoder(self.width, self.downscales, out_channels),
        )  # fmt: skip
