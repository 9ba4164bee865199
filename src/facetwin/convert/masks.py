"""Blend masks: where the swapped face replaces the frame's, in model pixels, before erode and feather.

Each mode is a function ``(swapped, landmarks) -> mask``: ``swapped`` the model's output for one face
(facetwin.swapper.SwappedFace), ``landmarks`` that face's mesh in frame pixels (478 x 3); it returns an
S x S float32 mask in [0, 1] in model pixels. ``MASK_MODES`` lists them; adding one is a function and
an entry here. ``shape_mask`` then erodes and feathers whichever mode was chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facetwin.arrays import Landmarks, Mask
from facetwin.faces.regions import hull_mask
from facetwin.registry import Registry

if TYPE_CHECKING:
    from facetwin.swapper import SwappedFace

MaskMode = Callable[["SwappedFace", Landmarks], Mask]


def hull(swapped: SwappedFace, landmarks: Landmarks) -> Mask:
    """The convex hull of the face oval of the source face's mesh."""
    return hull_mask(landmarks, swapped.face.shape[0], swapped.frame_to_model)


def learned(swapped: SwappedFace, landmarks: Landmarks) -> Mask:
    """The model's own predicted mask, thresholded at 0.5 (the hull for models that predict none)."""
    if swapped.learned_mask is None:
        return hull(swapped, landmarks)
    return (swapped.learned_mask > 0.5).astype(np.float32)


def both(swapped: SwappedFace, landmarks: Landmarks) -> Mask:
    """Hull and learned mask together (their product): the face, minus what the model says is not face."""
    return hull(swapped, landmarks) * learned(swapped, landmarks)


MASK_MODES: Registry[MaskMode] = Registry("mask mode", {"hull": hull, "learned": learned, "both": both})


def shape_mask(mask: Mask, erode: int, feather: int) -> Mask:
    """Erode (``erode`` > 0) or dilate (< 0) by that many model pixels, then feather: erode by the feather
    radius first, so the soft edge stays inside the face, and blur (Gaussian sigma ``feather / 2 + 0.5``).
    Values under 1e-3 are set to 0, so untouched pixels stay exactly the input's."""
    if erode:
        k = abs(erode) * 2 + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        mask = cv2.erode(mask, kernel) if erode > 0 else cv2.dilate(mask, kernel)
    if feather:
        k = feather * 2 + 1
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        mask = cv2.GaussianBlur(mask, (0, 0), feather / 2 + 0.5)
    mask[mask < 1e-3] = 0.0
    return mask
