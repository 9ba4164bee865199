"""Putting a swapped face back: its mask, colour match, warp back with the inverse matrix, and blend.

Only a region of interest around the face is touched, so every pixel outside the (feathered) mask is
exactly the input's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.convert.color import match_colour
from facetwin.convert.swap import SwappedFace
from facetwin.faces.align import transform_points
from facetwin.train.data import FACE_OVAL

MASK_MODES = ("hull", "learned", "both")
BLEND_MODES = ("feather", "poisson")


@dataclass(frozen=True)
class BlendOptions:
    mask: str = "both"  # hull, learned (falls back to hull for models without one), both (their product)
    erode: int = 0  # pixels of the model image; negative dilates
    feather: int = 6  # Gaussian feather radius in model pixels
    colour: str = "histogram"  # the least visible seam of the three (bench/convert.py: delta E 6.7, Reinhard 7.5, none 17.9)
    blend: str = "feather"


def face_mask(swapped: SwappedFace, landmarks: np.ndarray, options: BlendOptions) -> np.ndarray:
    """The blend mask in model pixels (S x S float32 in [0, 1])."""
    size = swapped.face.shape[0]
    hull = np.zeros((size, size), np.uint8)
    points = transform_points(landmarks, swapped.to_model)[FACE_OVAL]
    cv2.fillConvexPoly(hull, cv2.convexHull(points.round().astype(np.int32)), 255)
    mask = hull.astype(np.float32) / 255.0
    if options.mask in ("learned", "both") and swapped.learned_mask is not None:
        learned = (swapped.learned_mask > 0.5).astype(np.float32)
        mask = learned if options.mask == "learned" else mask * learned
    if options.erode:
        k = abs(options.erode) * 2 + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        mask = cv2.erode(mask, kernel) if options.erode > 0 else cv2.dilate(mask, kernel)
    if options.feather:
        # erode by the feather radius first, so the soft edge stays inside the face
        k = options.feather * 2 + 1
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        mask = cv2.GaussianBlur(mask, (0, 0), options.feather / 2 + 0.5)
    mask[mask < 1e-3] = 0.0
    return mask


def _roi(matrix: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int]:
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    frame_corners = transform_points(corners, inverse)
    x0, y0 = np.floor(frame_corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(frame_corners.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def paste(frame: np.ndarray, swapped: SwappedFace, landmarks: np.ndarray, options: BlendOptions) -> np.ndarray:
    """Return a copy of ``frame`` (RGB uint8) with the swapped face blended in."""
    height, width = frame.shape[:2]
    size = swapped.face.shape[0]
    matrix = swapped.to_model
    mask = face_mask(swapped, landmarks, options)
    if not mask.any():
        return frame.copy()
    original = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    face = match_colour(swapped.face, original.astype(np.float32) / 255.0, mask, options.colour)
    x0, y0, x1, y1 = _roi(matrix, size, width, height)
    if x1 <= x0 or y1 <= y0:
        return frame.copy()
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)  # ROI pixel -> model pixel
    roi_size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face_back = cv2.warpAffine((face * 255).astype(np.float32), shifted, roi_size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    mask_back = cv2.warpAffine(mask, shifted, roi_size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    result = frame.copy()
    region = result[y0:y1, x0:x1]
    if options.blend == "poisson":
        binary = (mask_back > 0.5).astype(np.uint8) * 255
        if binary.any():
            ys, xs = np.nonzero(binary)
            centre = (int((xs.min() + xs.max()) / 2) + x0, int((ys.min() + ys.max()) / 2) + y0)
            source = np.zeros_like(frame)
            source[y0:y1, x0:x1] = np.clip(face_back, 0, 255).astype(np.uint8)
            full_mask = np.zeros(frame.shape[:2], np.uint8)
            full_mask[y0:y1, x0:x1] = binary
            try:
                return cv2.seamlessClone(source, frame, full_mask, centre, cv2.NORMAL_CLONE)
            except cv2.error:
                pass  # a mask touching the frame edge: fall back to feathering
    alpha = mask_back[..., None]
    touched = alpha[..., 0] > 0
    blended = region.astype(np.float32) * (1 - alpha) + face_back * alpha
    region[touched] = np.clip(blended[touched] + 0.5, 0, 255).astype(np.uint8)
    return result
