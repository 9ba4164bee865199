"""Reconstruction losses: plain L1 (the 2017 model) and SSIM + L1 weighted to the face, eyes and mouth."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PRIORITY_WEIGHT = 2.0  # eyes and mouth count (1 + this) times as much as the rest of the face
BACKGROUND_WEIGHT = 0.1  # outside the face hull the model is still asked to be roughly right


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum())[:, None] @ (kernel / kernel.sum())[None, :]
    return kernel.expand(channels, 1, size, size).to(like.dtype).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (N, C, H, W) of images in [0, 1], Gaussian window, as in Wang et al. 2004."""
    channels = x.shape[1]
    kernel = _gaussian_window(window, sigma, channels, x)
    pad = window // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def pixel_weights(mask: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
    return mask * (1.0 + PRIORITY_WEIGHT * priority) + BACKGROUND_WEIGHT


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum()


def l1_loss(face: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (face - target).abs().mean()


def face_loss(
    face: torch.Tensor,
    mask_pred: torch.Tensor | None,
    target: torch.Tensor,
    mask: torch.Tensor,
    priority: torch.Tensor,
) -> torch.Tensor:
    """SSIM + L1 weighted by face hull and eye/mouth priority, plus mask L1 when a mask is predicted.

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


def masked_l1(face: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the face hull: the held-out reconstruction figure."""
    return weighted_mean((face.float() - target.float()).abs(), mask)
