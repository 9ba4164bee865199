"""Training augmentation: a random similarity jitter and colour change shared by input and target, then
the random warp that only the input gets, so the network learns to rebuild a clean face from a
distorted one.

Everything takes an explicit ``numpy.random.Generator``: a sample is a pure function of its seed,
which is what makes a resumed run, or one with a different number of workers, see the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    rotation_deg: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: bool = True
    warp_grid: int = 5
    warp_scale: float = 0.025  # std of the grid jitter, as a share of the output size
    brightness: float = 0.08
    contrast: float = 0.1
    saturation: float = 0.1


def jitter_matrix(rng: np.random.Generator, size: int, settings: AugmentSettings) -> tuple[np.ndarray, bool]:
    """A random rotation, zoom and shift about the crop centre (2x3), and whether to flip."""
    angle = rng.uniform(-settings.rotation_deg, settings.rotation_deg)
    scale = 1.0 + rng.uniform(-settings.zoom, settings.zoom)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-settings.shift, settings.shift, size=2) * size
    flip = bool(settings.flip and rng.random() < 0.5)
    return matrix, flip


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Brightness, contrast and saturation changes on a float RGB image in [0, 1]."""
    grey = rgb.mean(axis=2, keepdims=True)
    out = grey + (rgb - grey) * (1.0 + rng.uniform(-settings.saturation, settings.saturation))
    mean = out.mean()
    out = mean + (out - mean) * (1.0 + rng.uniform(-settings.contrast, settings.contrast))
    out = out + rng.uniform(-settings.brightness, settings.brightness)
    return np.clip(out, 0.0, 1.0)


def random_warp(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Jitter a 5x5 grid of control points, interpolate a dense remap field, and warp the image.

    Only the offsets are interpolated (bicubic) and added to the exact identity map, so a zero jitter
    is exactly no warp, and the field is smooth up to the borders. Sampling is clamped to the image,
    so no black edges appear.
    """
    size = image.shape[0]
    n = settings.warp_grid
    offsets = rng.normal(scale=settings.warp_scale * size, size=(2, n, n)).astype(np.float32)
    identity = np.arange(size, dtype=np.float32)
    map_x = identity[None, :] + cv2.resize(offsets[0], (size, size), interpolation=cv2.INTER_CUBIC)
    map_y = identity[:, None] + cv2.resize(offsets[1], (size, size), interpolation=cv2.INTER_CUBIC)
    np.clip(map_x, 0, size - 1, out=map_x)
    np.clip(map_y, 0, size - 1, out=map_y)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def coverage_matrix(crop_size: int, out_size: int, coverage: float) -> np.ndarray:
    """2x3 matrix taking the aligned crop to the model's input: the centred ``coverage`` share, resized."""
    inner = crop_size * coverage
    scale = out_size / inner
    offset = (crop_size - inner) / 2
    return np.array([[scale, 0, -offset * scale], [0, scale, -offset * scale]], dtype=np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 matrix that applies ``inner`` then ``outer``."""
    full = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return full[:2]
