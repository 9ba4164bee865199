"""The building blocks every model here is made of."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GEMM_MAX_POSITIONS = 16  # output maps up to 4x4: where the GEMM form measured faster (bench/train.py)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same results) that trains small output maps as one GEMM on the CPU.

    Why: the bottleneck layers of these models are wide convolutions onto a 4x4 map (512->1024 5x5 and
    1024->2048 3x3 in ``original``). oneDNN's CPU kernels compute their weight gradient 4-9x slower
    than their forward pass; written as ``unfold`` + matrix multiply, forward and backward are plain
    GEMMs, about 1.8x faster for the layer in bf16 and 1.3-1.8x in fp32 on the machine measured.
    Only while gradients are computed: for inference alone oneDNN's forward kernel is the faster one
    (the GEMM form took twice as long per face in convert). Larger maps, and every other device, keep
    the ordinary kernel too.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not torch.is_grad_enabled() or x.device.type != "cpu" or self.groups != 1
                or self.padding_mode != "zeros" or self.dilation != (1, 1)):  # fmt: skip
            return super().forward(x)
        if isinstance(self.padding, str):  # "same"/"valid": not used by these models
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_h = (x.shape[2] + 2 * ph - kh) // sh + 1
        out_w = (x.shape[3] + 2 * pw - kw) // sw + 1
        if out_h * out_w > GEMM_MAX_POSITIONS:
            return super().forward(x)
        columns = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # N, C*kh*kw, L
        out = self.weight.flatten(1) @ columns  # N, out_channels, L
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out.reshape(x.shape[0], self.out_channels, out_h, out_w)


class Downscale(nn.Sequential):
    """5x5 stride-2 convolution and LeakyReLU(0.1): halves the size, as in the 2017 encoder."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(Conv2d(in_channels, out_channels, 5, stride=2, padding=2), nn.LeakyReLU(0.1))


class Upscale(nn.Sequential):
    """3x3 convolution to 4x the channels, LeakyReLU(0.1), PixelShuffle(2): doubles the size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(Conv2d(in_channels, out_channels * 4, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


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
