"""Face detection with MediaPipe's BlazeFace models, whose weights ship inside the mediapipe wheel.

The short-range model (128 px input, ~3 ms) suits faces that fill a good part of the frame, as in
talking-head footage; the full-range model (~9 ms) finds small faces in wide shots. We run the short
one first and fall back to the full one only on frames where it finds nothing, so the common case
pays for one cheap pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mediapipe as mp
import numpy as np


@dataclass(frozen=True)
class Detection:
    """A face found in a frame: box (x, y, w, h) and six keypoints in pixels, and the model's score.

    Keypoints, in MediaPipe's order: right eye, left eye, nose tip, mouth centre, right ear, left ear
    (the subject's right and left).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(repr=False)

    @property
    def size(self) -> float:
        return max(self.box[2], self.box[3])


class FaceDetector:
    """Finds faces in RGB frames, largest first."""

    def __init__(self, min_score: float = 0.5) -> None:
        self._short = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_score)
        self._full = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = self._run(self._short, rgb) or self._run(self._full, rgb)
        return sorted(found, key=lambda d: d.size, reverse=True)

    @staticmethod
    def _run(model: mp.solutions.face_detection.FaceDetection, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        result = model.process(rgb)
        detections = []
        for item in result.detections or []:
            rel = item.location_data.relative_bounding_box
            box = (rel.xmin * width, rel.ymin * height, rel.width * width, rel.height * height)
            points = np.array(
                [(kp.x * width, kp.y * height) for kp in item.location_data.relative_keypoints], dtype=np.float32
            )
            detections.append(Detection(box=box, score=float(item.score[0]), keypoints=points))
        return detections

    def close(self) -> None:
        self._short.close()
        self._full.close()
