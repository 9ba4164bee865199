"""Per-frame face analysis shared by extract and convert: detect, keep the wanted faces, mesh, align."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facetwin.faces.align import AlignedFace, align_face
from facetwin.faces.detect import Detection, FaceDetector
from facetwin.faces.landmarks import FaceLandmarker


@dataclass(frozen=True)
class FoundFace:
    detection: Detection
    landmarks: np.ndarray = field(repr=False)
    aligned: AlignedFace


class FaceAnalyser:
    """Finds, landmarks and aligns up to ``max_faces`` faces of at least ``min_face`` pixels, largest first."""

    def __init__(self, size: int = 256, min_face: int = 40, max_faces: int = 4, min_score: float = 0.5) -> None:
        self.size, self.min_face, self.max_faces = size, min_face, max_faces
        self.detector = FaceDetector(min_score=min_score, min_face=min_face)
        self.landmarker = FaceLandmarker()

    def locate(self, rgb: np.ndarray) -> list[tuple[Detection, np.ndarray]]:
        """The wanted faces' detections and 478-point meshes, largest first, without cutting crops.

        Convert needs only this: it smooths the landmarks over time before aligning, so a crop cut
        from the raw landmarks would be thrown away."""
        found: list[tuple[Detection, np.ndarray]] = []
        for detection in self.detector.detect(rgb):
            if len(found) >= self.max_faces:
                break
            if detection.size < self.min_face:
                continue
            landmarks = self.landmarker.landmarks(rgb, detection)
            if landmarks is not None:
                found.append((detection, landmarks))
        return found

    def analyse(self, rgb: np.ndarray) -> list[FoundFace]:
        return [FoundFace(d, points, align_face(rgb, points, self.size)) for d, points in self.locate(rgb)]

    def close(self) -> None:
        self.detector.close()
        self.landmarker.close()
