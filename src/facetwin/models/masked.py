"""``masked128``: a 128 px model that also predicts its own face mask.

What it takes from DeepFaceLab's DF design: a wider crop (75 % coverage: brows to chin with cheeks),
residual blocks in the decoder for detail, a fourth output channel for the mask, and training with
SSIM + L1 weighted towards the eyes and mouth (see ``facetwin.train.losses``). It is sized so that a
2-core CPU trains it at a usable rate: about 2.2x the multiply-adds of ``original`` per image for 4x
the pixels.
"""

from __future__ import annotations

from torch import nn

from facetwin.models.base import ModelSpec, SwapModel
from facetwin.models.blocks import Dense, Downscale, Residual, Upscale


def _decoder() -> nn.Sequential:
    return nn.Sequential(
        Upscale(256, 192), Residual(192),
        Upscale(192, 96), Residual(96),
        Upscale(96, 48),
        nn.Conv2d(48, 4, 5, padding=2),
    )  # fmt: skip


class Masked128(SwapModel):
    spec = ModelSpec(name="masked128", size=128, coverage=0.75, has_mask=True)
    learning_rate = 5e-5
    betas = (0.5, 0.999)

    def __init__(self) -> None:
        encoder = nn.Sequential(
            Downscale(3, 64), Downscale(64, 128), Downscale(128, 256), Downscale(256, 512),
            Dense((512, 8, 8), 256, (512, 8, 8)),
            Upscale(512, 256),
        )  # fmt: skip
        super().__init__(encoder, _decoder(), _decoder())
