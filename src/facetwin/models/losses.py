"""Reconstruction losses: plain L1 (the 2017 model) and SSIM + L1 weighted to the face, eyes and mouth."""

from __future__ import annotations

from typing import Protocol

import torch

BACKGROUND_WEIGHT = 0.1  # outside the face hull the model is still asked to be roughly right


def _blur_matrix(size: int, window: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """(size, size) matrix M with ``M @ v`` = v blurred by a 1-D Gaussian, reflect padding folded in."""
    coords = torch.arange(window, dtype=torch.float32, device=like.device) - (window - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    rows = torch.arange(size, device=like.device)[:, None]
    sources = (rows + torch.arange(window, device=like.device)[None] - window // 2).abs()  # reflect below 0
    sources = torch.where(sources >= size, 2 * (size - 1) - sources, sources)  # and past the end
    matrix = torch.zeros(size, size, device=like.device)
    matrix.index_put_((rows.expand_as(sources), sources), kernel.expand_as(sources), accumulate=True)
    return matrix.to(like.dtype)


def gaussian_blur(images: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian blur of every channel with reflect padding, as two matrix products (columns, then rows).

    Why not a convolution: the 2-D window is the outer product of two 1-D ones, and a 1-D blur along an
    axis is a multiplication by a banded matrix. Written so, forward and backward are GEMMs, 6x faster
    on the CPU than the depthwise 11x11 convolution; at 128 px that convolution had been the largest
    single cost of a training step (28 % of it, more than any layer of the model). Same result to 1e-6.
    """
    height, width = images.shape[-2:]
    return _blur_matrix(height, window, sigma, images) @ images @ _blur_matrix(width, window, sigma, images).T


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (N, C, H, W) of images in [0, 1], Gaussian window, as in Wang et al. 2004.

    The five local statistics are blurred in one call (stacked along the batch), not five."""
    n = x.shape[0]
    mu_x, mu_y, sq_x, sq_y, xy = gaussian_blur(torch.cat([x, y, x * x, y * y, x * y]), window, sigma).split(n)
    var_x = sq_x - mu_x**2
    var_y = sq_y - mu_y**2
    cov = xy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def pixel_weights(mask: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
    """Each pixel's loss weight: 1 in the face hull plus ``priority`` (the eyes' and mouth's extra weight:
    their multiplier - 1), and ``BACKGROUND_WEIGHT`` everywhere."""
    return mask * (1.0 + priority) + BACKGROUND_WEIGHT


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum()


class Criterion(Protocol):
    """A model's loss for one identity: predicted face (N, 3, S, S) and mask (N, 1, S, S) or None, against
    the target face and its face-hull mask (in [0, 1]) and the eyes' and mouth's extra loss weight
    ``priority`` (N, 1, S, S), >= 0 (train.data.make_sample)."""

    def __call__(self, face: torch.Tensor, mask_pred: torch.Tensor | None, target: torch.Tensor, mask: torch.Tensor,
                 priority: torch.Tensor) -> torch.Tensor: ...


def l1_loss(
    face: torch.Tensor, mask_pred: torch.Tensor | None, target: torch.Tensor, mask: torch.Tensor, priority: torch.Tensor
) -> torch.Tensor:
    """Plain L1 over the whole image, in fp32: the 2017 model's loss (masks unused)."""
    return (face.float() - target.float()).abs().mean()


def face_loss(
    face: torch.Tensor,
    mask_pred: torch.Tensor | None,
    target: torch.Tensor,
    mask: torch.Tensor,
    priority: torch.Tensor,
) -> torch.Tensor:
    """SSIM + L1 weighted by face hull and the eyes' and mouth's extra weight, plus mask L1 when a mask is
    predicted.

    Computed in fp32 even inside a bf16 autocast region: SSIM divides local variances, and in bf16 the
    blurred squares lose enough precision for the denominator to reach zero (seen as a -inf loss).
    """
    with torch.autocast(face.device.type, enabled=False):
        face, target = face.float(), target.float()
        weights = pixel_weights(mask, priority)
        structural = weighted_mean(1.0 - ssim_map(face, target), weights) / 2
        absolute = weighted_mean((face - target).abs(), weights)
        loss = structural + absolute
        if mask_pred is not None:
            loss = loss + (mask_pred.float() - mask).abs().mean()
    return loss
