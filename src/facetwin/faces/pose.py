"""Head pose from the face mesh: yaw, pitch and roll in degrees, by cv2.solvePnP on a generic head.

Used to score expression and pose in evaluate (``scoring.metrics``) and to sort a face set by yaw or
pitch (``facetwin.curation``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# A generic head (mm; x right, y up, z towards the camera) at six mesh points: the classic solvePnP
# head-pose model. Only differences of pose matter here, so a generic head is enough.
POSE_MODEL = np.array([
    (0.0, 0.0, 0.0),  # nose tip
    (0.0, -63.6, -12.5),  # chin
    (-43.3, 32.7, -26.0),  # subject's right eye, outer corner (image left)
    (43.3, 32.7, -26.0),  # subject's left eye, outer corner
    (-28.9, -28.9, -24.1),  # mouth, subject's right corner
    (28.9, -28.9, -24.1),  # mouth, subject's left corner
])  # fmt: skip
POSE_POINTS = [1, 152, 33, 263, 61, 291]  # the same six points in the MediaPipe mesh


def head_pose(points: np.ndarray, image_size: int) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from a mesh in pixels of a square image, via cv2.solvePnP."""
    focal = float(image_size)
    camera = np.array([[focal, 0, image_size / 2], [0, focal, image_size / 2], [0, 0, 1]], dtype=np.float64)
    image_points = points[POSE_POINTS, :2].astype(np.float64)
    flipped = POSE_MODEL * np.array([1.0, -1.0, -1.0])  # the model's y up / z out -> the camera's y down / z in
    ok, rotation, _ = cv2.solvePnP(flipped, image_points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.full(3, np.nan)
    matrix, _ = cv2.Rodrigues(rotation)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -matrix[2, 0]))))
    pitch = math.degrees(math.atan2(matrix[2, 1], matrix[2, 2]))
    roll = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    return np.array([yaw, pitch, roll])
