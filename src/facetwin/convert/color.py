"""Colour matching of the swapped face to the face it replaces."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

ColourMode = Literal["none", "reinhard", "histogram"]
COLOUR_MODES: tuple[str, ...] = ("none", "reinhard", "histogram")


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2LAB)


def reinhard(face: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match mean and standard deviation per LAB channel inside the mask (Reinhard et al. 2001)."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    src, ref = _lab(face), _lab(reference)
    out = src.copy()
    for c in range(3):
        s_mean, s_std = src[..., c][inside].mean(), src[..., c][inside].std() + 1e-6
        r_mean, r_std = ref[..., c][inside].mean(), ref[..., c][inside].std() + 1e-6
        out[..., c] = (src[..., c] - s_mean) * (r_std / s_std) + r_mean
    return np.clip(cv2.cvtColor(out, cv2.COLOR_LAB2RGB), 0, 1)


def histogram(face: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match each RGB channel's histogram inside the mask to the reference's (quantile mapping)."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    out = face.copy()
    quantiles = np.linspace(0, 1, 256)
    for c in range(3):
        src_q = np.quantile(face[..., c][inside], quantiles)
        ref_q = np.quantile(reference[..., c][inside], quantiles)
        out[..., c] = np.interp(face[..., c], src_q, ref_q)
    return out


def match_colour(face: np.ndarray, reference: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "none":
        return face
    if mode == "reinhard":
        return reinhard(face, reference, mask)
    if mode == "histogram":
        return histogram(face, reference, mask)
    raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(COLOUR_MODES)}")
