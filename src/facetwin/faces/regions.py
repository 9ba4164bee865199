"""Regions of MediaPipe's 478-point face mesh, and the masks drawn from them.

The index sets are the mesh topology's own (``mediapipe.python.solutions.face_mesh_connections``:
FACEMESH_FACE_OVAL, _LEFT_EYE, ... flattened to sorted point indices), written out here so that code
which only needs the numbers does not import MediaPipe (~2.5 s); a test checks they equal MediaPipe's.
"Left" and "right" are the subject's.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetwin.arrays import Affine, Landmarks, Mask

FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251, 284,
             288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454)  # fmt: skip
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
        291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)  # fmt: skip
INNER_LIPS = (13, 14, 78, 80, 81, 82, 87, 88, 95, 178, 191, 308, 310, 311, 312, 317, 318, 324, 402, 415)  # the mouth opening
LEFT_IRIS = (473, 474, 475, 476, 477)  # 473 is the centre
RIGHT_IRIS = (468, 469, 470, 471, 472)  # 468 is the centre

EYE_REGIONS = (tuple(sorted(LEFT_EYE + LEFT_EYEBROW)), tuple(sorted(RIGHT_EYE + RIGHT_EYEBROW)))
"""Each eye with its brow: the regions the face loss weights up, with the mouth."""


def _fill_hull(mask: np.ndarray, points: np.ndarray) -> None:
    cv2.fillConvexPoly(mask, cv2.convexHull(points.round().astype(np.int32)), 255)


def hull_mask(landmarks: Landmarks, size: int, to_image: Affine) -> Mask:
    """The face-oval hull as a (size, size) float32 mask in {0, 1}, after mapping the landmarks by the 2x3
    ``to_image`` (from the landmarks' space into the mask's pixels)."""
    moved = landmarks[:, :2] @ to_image[:, :2].T + to_image[:, 2]
    hull = np.zeros((size, size), np.uint8)
    _fill_hull(hull, moved[list(FACE_OVAL)])
    return hull.astype(np.float32) / 255.0


def region_masks(landmarks: Landmarks, size: int, to_image: Affine) -> tuple[Mask, Mask, Mask]:
    """(face hull, eyes, mouth) masks, each (size, size) float32 in {0, 1}, in the pixels ``to_image`` maps
    the landmarks into. The eyes mask is the hulls of each eye with its brow, the mouth mask the lips'
    hull, both dilated by ``max(3, size // 32)`` px so the features' edges count too."""
    moved = landmarks[:, :2] @ to_image[:, :2].T + to_image[:, 2]
    hull = np.zeros((size, size), np.uint8)
    _fill_hull(hull, moved[list(FACE_OVAL)])
    grow = np.ones((max(3, size // 32) | 1,) * 2, np.uint8)
    features = []
    for regions in (EYE_REGIONS, (LIPS,)):
        mask = np.zeros((size, size), np.uint8)
        for region in regions:
            _fill_hull(mask, moved[list(region)])
        features.append(cv2.dilate(mask, grow).astype(np.float32) / 255.0)
    return hull.astype(np.float32) / 255.0, features[0], features[1]
