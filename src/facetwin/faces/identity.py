"""Who a face looks like: dlib's 128-d face embedding (ResNet, 99.38 % on LFW), same person below 0.6.

The 5-point shape model aligns each face (the 68-point one carries a licence that restricts commercial
use). The model files come inside the `face-recognition-models` package, found by path: importing it
would need pkg_resources.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import FacetwinError

SAME_PERSON = 0.6
WORK_SIZE = 200  # faces are scaled to this before dlib cuts its 150 px chip


def _model_folder() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FacetwinError("facetwin evaluate needs the face-recognition-models package (see README)")
    return Path(spec.origin).parent / "models"


class FaceEmbedder:
    def __init__(self) -> None:
        import dlib

        folder = _model_folder()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, faces: list[np.ndarray], boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
        """128-d embeddings of face images (RGB, uint8 or float in [0, 1]), each with its face box
        (x0, y0, x1, y1) in that image's pixels."""
        out = np.zeros((len(faces), 128), np.float32)
        for i, (face, box) in enumerate(zip(faces, boxes, strict=True)):
            image = face if face.dtype == np.uint8 else np.clip(face * 255 + 0.5, 0, 255).astype(np.uint8)
            scale = WORK_SIZE / image.shape[1]
            image = np.ascontiguousarray(cv2.resize(image, (WORK_SIZE, round(image.shape[0] * scale)), interpolation=cv2.INTER_CUBIC))
            x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
            shape = self._shape(image, self._dlib.rectangle(x0, y0, x1, y1))
            out[i] = np.array(self._net.compute_face_descriptor(image, shape), np.float32)
        return out


@dataclass(frozen=True)
class IdentityScores:
    """How a group of faces sits between the identity they should look like and the other one."""

    to_target: float  # mean distance to the target identity's centroid
    to_source: float  # mean distance to the other identity's centroid
    retrieval: float  # share nearer the target than the source
    within_threshold: float  # share within 0.6 of the target centroid
    count: int


def identity_scores(embeddings: np.ndarray, target_centroid: np.ndarray, source_centroid: np.ndarray) -> IdentityScores:
    to_target = np.linalg.norm(embeddings - target_centroid, axis=1)
    to_source = np.linalg.norm(embeddings - source_centroid, axis=1)
    return IdentityScores(
        float(to_target.mean()), float(to_source.mean()), float((to_target < to_source).mean()),
        float((to_target < SAME_PERSON).mean()), len(embeddings),
    )
