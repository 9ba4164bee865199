"""The building blocks every model here is made of."""

from __future__ import annotations

import torch
from torch import nn


class Downscale(nn.Sequential):
    """5x5 stride-2 convolution and LeakyReLU(0.1): halves the size, as in the 2017 encoder."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 5, stride=2, padding=2), nn.LeakyReLU(0.1))


class Upscale(nn.Sequential):
    """3x3 convolution to 4x the channels, LeakyReLU(0.1), PixelShuffle(2): doubles the size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels * 4, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class Residual(nn.Module):
    """Two 3x3 convolutions with a skip, as in DeepFaceLab's decoders: detail without more downsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Dense(nn.Module):
    """Flatten, a linear bottleneck, and back out to a small feature map."""

    def __init__(self, in_shape: tuple[int, int, int], bottleneck: int, out_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = in_shape
        self.out_shape = out_shape
        self.squeeze = nn.Linear(c * h * w, bottleneck)
        self.expand = nn.Linear(bottleneck, out_shape[0] * out_shape[1] * out_shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.squeeze(torch.flatten(x, 1)))
        return x.reshape(x.shape[0], *self.out_shape)
