"""Putting a swapped face back: its mask, colour transfer, warp back with the inverse matrix, and blend.

Only a region of interest (ROI) around the face is touched, so every pixel outside the (feathered) mask
is exactly the input's. A blend mode is a function ``(frame, face, alpha, roi) -> frame``: ``frame`` the
H x W x 3 uint8 RGB frame, ``face`` the recoloured face warped back into the ROI (h x w x 3 float32,
0-255), ``alpha`` the mask warped back (h x w float32 in [0, 1]), ``roi`` (x0, y0, x1, y1) in frame
pixels; it returns the new frame. ``BLEND_MODES`` lists them; adding one is a function and an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facetwin.arrays import Affine, Landmarks, Mask, RGBImage
from facetwin.convert.colour import COLOUR_MODES
from facetwin.convert.masks import MASK_MODES, shape_mask
from facetwin.convert.restore import RestoreWeights, restore_mask
from facetwin.faces.align import transform_points
from facetwin.options import BlendOptions
from facetwin.registry import Registry

if TYPE_CHECKING:
    from facetwin.swapper import SwappedFace

Roi = tuple[int, int, int, int]
BlendMode = Callable[[RGBImage, np.ndarray, np.ndarray, Roi], RGBImage]


def feather(frame: RGBImage, face: np.ndarray, alpha: np.ndarray, roi: Roi) -> RGBImage:
    """Alpha blending by the feathered mask: ``frame * (1 - alpha) + face * alpha``, rounded."""
    x0, y0, x1, y1 = roi
    result = frame.copy()
    region = result[y0:y1, x0:x1]
    touched = alpha > 0
    blended = region.astype(np.float32) * (1 - alpha[..., None]) + face * alpha[..., None]
    region[touched] = np.clip(blended[touched] + 0.5, 0, 255).astype(np.uint8)
    return result


def poisson(frame: RGBImage, face: np.ndarray, alpha: np.ndarray, roi: Roi) -> RGBImage:
    """Poisson (gradient-domain) blending inside the mask's core (alpha > 0.5) with cv2.seamlessClone
    (Perez et al. 2003); feathering where the mask touches the frame's edge and OpenCV refuses."""
    x0, y0, x1, y1 = roi
    binary = (alpha > 0.5).astype(np.uint8) * 255
    if not binary.any():
        return feather(frame, face, alpha, roi)
    ys, xs = np.nonzero(binary)
    centre = (int((xs.min() + xs.max()) / 2) + x0, int((ys.min() + ys.max()) / 2) + y0)
    source = np.zeros_like(frame)
    source[y0:y1, x0:x1] = np.clip(face, 0, 255).astype(np.uint8)
    full_mask = np.zeros(frame.shape[:2], np.uint8)
    full_mask[y0:y1, x0:x1] = binary
    try:
        return cv2.seamlessClone(source, frame, full_mask, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return feather(frame, face, alpha, roi)


BLEND_MODES: Registry[BlendMode] = Registry("blend mode", {"feather": feather, "poisson": poisson})


def face_mask(swapped: SwappedFace, landmarks: Landmarks, options: BlendOptions) -> Mask:
    """The blend mask in model pixels (S x S float32 in [0, 1]): the chosen mask mode, eroded and feathered."""
    return shape_mask(MASK_MODES[options.mask](swapped, landmarks), options.erode, options.feather)


def _roi(frame_to_model: Affine, size: int, width: int, height: int) -> Roi:
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    frame_corners = transform_points(corners, cv2.invertAffineTransform(frame_to_model))
    x0, y0 = np.floor(frame_corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(frame_corners.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def paste(frame: RGBImage, swapped: SwappedFace, landmarks: Landmarks, options: BlendOptions,
          restore: RestoreWeights | None = None) -> RGBImage:  # fmt: skip
    """A copy of ``frame`` (H x W x 3 uint8 RGB) with the swapped face blended in as ``options`` say;
    ``restore`` (``convert.restore``) leaves the source's own eyes or mouth showing through, by taking
    those regions out of the mask, so the frame's pixels stay exactly as they were there.
    Raises FacetwinError for an unknown mask, colour or blend mode."""
    height, width = frame.shape[:2]
    size = swapped.face.shape[0]
    frame_to_model = swapped.frame_to_model
    mask = face_mask(swapped, landmarks, options)
    if restore is not None and restore.any:
        mask = mask * (1.0 - restore_mask(landmarks, frame_to_model, size, restore))
    if not mask.any():
        return frame.copy()
    original = cv2.warpAffine(frame, frame_to_model, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    face = COLOUR_MODES[options.colour](swapped.face, original.astype(np.float32) / 255.0, mask)
    roi = _roi(frame_to_model, size, width, height)
    x0, y0, x1, y1 = roi
    if x1 <= x0 or y1 <= y0:
        return frame.copy()
    roi_to_model = frame_to_model.copy()
    roi_to_model[:, 2] += frame_to_model[:, :2] @ np.array([x0, y0], dtype=np.float64)
    roi_size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face_back = cv2.warpAffine((face * 255).astype(np.float32), roi_to_model, roi_size, flags=flags,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    alpha = cv2.warpAffine(mask, roi_to_model, roi_size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return BLEND_MODES[options.blend](frame, face_back, alpha, roi)
