"""Colour transfer: matching the swapped face's colour to the face it replaces, inside the blend mask.

Each mode is a function ``(face, reference, mask) -> face``: face and reference S x S x 3 float32 RGB in
[0, 1] in model pixels, mask S x S float32 in [0, 1]; it returns the recoloured face (same shape, in
[0, 1]). ``COLOUR_MODES`` lists them; adding one is a function and an entry here. The default,
``histogram``, leaves the least visible seam of the three (bench/convert.py: seam delta E 6.7 against
Reinhard's 7.5 and 17.9 for none, on the demo model).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from facetwin.arrays import FloatImage, Mask
from facetwin.registry import Registry

ColourTransfer = Callable[[FloatImage, FloatImage, Mask], FloatImage]
MIN_PIXELS = 16  # fewer pixels inside the mask than this: too few to estimate colour from, face unchanged


def _lab(rgb: FloatImage) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2LAB)


def none(face: FloatImage, reference: FloatImage, mask: Mask) -> FloatImage:
    """No colour change: the model's own colours."""
    return face


def reinhard(face: FloatImage, reference: FloatImage, mask: Mask) -> FloatImage:
    """Mean and standard deviation matched per LAB channel inside the mask (Reinhard et al. 2001)."""
    inside = mask > 0.5
    if inside.sum() < MIN_PIXELS:
        return face
    src, ref = _lab(face), _lab(reference)
    out = src.copy()
    for c in range(3):
        s_mean, s_std = src[..., c][inside].mean(), src[..., c][inside].std() + 1e-6
        r_mean, r_std = ref[..., c][inside].mean(), ref[..., c][inside].std() + 1e-6
        out[..., c] = (src[..., c] - s_mean) * (r_std / s_std) + r_mean
    return np.clip(cv2.cvtColor(out, cv2.COLOR_LAB2RGB), 0, 1)


def histogram(face: FloatImage, reference: FloatImage, mask: Mask) -> FloatImage:
    """Each RGB channel's histogram inside the mask matched to the reference's (quantile mapping)."""
    inside = mask > 0.5
    if inside.sum() < MIN_PIXELS:
        return face
    out = face.copy()
    quantiles = np.linspace(0, 1, 256)
    for c in range(3):
        src_q = np.quantile(face[..., c][inside], quantiles)
        ref_q = np.quantile(reference[..., c][inside], quantiles)
        out[..., c] = np.interp(face[..., c], src_q, ref_q)
    return out


COLOUR_MODES: Registry[ColourTransfer] = Registry("colour mode", {"none": none, "reinhard": reinhard, "histogram": histogram})
