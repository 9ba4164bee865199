"""The 478-point MediaPipe face mesh (468 surface points and 10 iris points), for one detected face.

The mesh model wants a face that fills its input, so each detection is cut out as a square around its
box and the mesh runs on that crop; the points are mapped back to frame pixels. Working per detection
keeps several faces in a frame apart and pairs each mesh with its detection without guessing.
"""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np

from facetwin.faces.detect import Detection

CROP_SCALE = 1.7  # square side as a multiple of the detection box: room for the forehead and a turned head
MAX_CROP = 384  # larger crops are downscaled: the mesh model sees 192 px anyway
N_LANDMARKS = 478


class FaceLandmarker:
    """Places the 478-point mesh on a detected face; points come back as (x, y, z) in frame pixels."""

    def __init__(self) -> None:
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
        )

    def landmarks(self, rgb: np.ndarray, detection: Detection) -> np.ndarray | None:
        x, y, w, h = detection.box
        side = CROP_SCALE * max(w, h)
        scale = min(1.0, MAX_CROP / side)
        out = max(32, int(round(side * scale)))
        x0 = x + w / 2 - side / 2
        y0 = y + h / 2 - side / 2
        to_crop = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
        crop = cv2.warpAffine(rgb, to_crop, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)
        points *= out  # MediaPipe's z is in the same normalised scale as x
        points[:, :2] -= (to_crop[0, 2], to_crop[1, 2])
        points /= scale
        return points

    def landmarks_near(self, rgb: np.ndarray, near: np.ndarray) -> np.ndarray | None:
        """The mesh of the face where an earlier mesh ``near`` (N x 2 or 3, frame pixels) was: as
        ``landmarks``, with a square as wide as that mesh for the detection box (a mesh spans about
        the width of the detector's box; its height runs higher, to the forehead)."""
        x0, y0 = near[:, :2].min(axis=0)
        x1, y1 = near[:, :2].max(axis=0)
        side = float(x1 - x0)
        box = (float((x0 + x1) / 2 - side / 2), float((y0 + y1) / 2 - side / 2), side, side)
        return self.landmarks(rgb, Detection(box, 1.0, np.zeros((6, 2), np.float32)))

    def close(self) -> None:
        self._mesh.close()
