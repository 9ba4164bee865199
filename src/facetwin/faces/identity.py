"""Who a face looks like: dlib's 128-d face embedding (ResNet, 99.38 % on LFW), same person below 0.6.

The 5-point shape model aligns each face (the 68-point one carries a licence that restricts commercial
use) and dlib cuts its 150 px chip; the network runs in dlib or, once the work pays for PyTorch's
import, in PyTorch (``faces.dlib_net``: the same weights, descriptors equal to dlib's within 1e-5, ~5 x
faster on our CPUs because the dlib-bin wheel has no BLAS; ``bench/identity.py`` measures both).
The model files come inside the `face-recognition-models` package, found by path: importing it would
need pkg_resources.

Faces are embedded from an aligned crop (``faces.align``) and the box of their mesh in it, so a face set's
stored crops, extract's fresh ones and convert's frames all give the same figure for the same face.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetwin.arrays import Landmarks, Points, RGBImage
from facetwin.errors import FacetwinError
from facetwin.faces.align import align_face, transform_points

SAME_PERSON = 0.6  # dlib's threshold: two faces of one person lie closer than this (dlib dnn_face_recognition_ex)
WORK_SIZE = 200  # faces are scaled to this before dlib cuts its 150 px chip
EMBED_ALIGN = 256  # px: the aligned crop a face is embedded from when it comes with a frame
DIMENSIONS = 128
ENGINES = ("auto", "torch", "dlib")
# seconds of dlib's network after which "auto" loads the PyTorch port: about what loading it costs on
# 2 cores (measured: 3.0 s, 2.7 of it the import), so that short work never pays it and long work pays
# at most twice the best choice
PORT_AFTER_SECONDS = 3.0
Box = tuple[float, float, float, float]


def _model_folder() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FacetwinError("face identities need the face-recognition-models package (see README)")
    return Path(spec.origin).parent / "models"


def points_box(points: Points) -> Box:
    """(x0, y0, x1, y1): the bounding box of mesh points (N x 2 or N x 3, pixels)."""
    return float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max())


class _Loader:
    """``DlibResNet(path)`` built on a daemon thread; ``result()`` waits for it (re-raising its error)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._net: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, name="facetwin-identity-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            from facetwin.faces.dlib_net import DlibResNet

            self._net = DlibResNet(self._path).eval()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def ready(self) -> bool:
        """Whether loading has ended (a failure counts: ``result`` raises it)."""
        return not self._thread.is_alive()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._net


class FaceEmbedder:
    """dlib's face descriptor, computed by one of two engines that give the same descriptors (within
    6e-7, ``bench/identity.py``): dlib's own network (0.3 s to load, ~110 ms a face on 2 cores) or its
    port to PyTorch (``faces.dlib_net``: ~23 ms a face, but ~3 s to import PyTorch and load).

    ``engine``: "auto" (default) answers with dlib's network and starts loading the port on a thread
    once dlib has spent PORT_AFTER_SECONDS embedding, or at once when PyTorch is already imported (as in
    convert and evaluate), then switches to it when it is ready: a short clip never pays the import, a
    long one pays at most that much more than the best choice in hindsight (the ski-rental rule).
    "torch" loads the port up front and waits for it; "dlib" never loads it. Raises FacetwinError when
    the model files are missing."""

    def __init__(self, engine: str = "auto") -> None:
        import dlib

        if engine not in ENGINES:
            raise FacetwinError(f"embedding engine is one of {', '.join(ENGINES)}, not {engine!r}")
        folder = _model_folder()
        self._dlib = dlib
        self.engine = engine
        self._shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._network_file = folder / "dlib_face_recognition_resnet_model_v1.dat"
        self._net: Any = None  # dlib's own network, made when first needed
        self._loading: _Loader | None = None
        self._dlib_seconds = 0.0  # time spent in dlib's network so far
        if engine == "torch" or (engine == "auto" and "torch" in sys.modules):
            self._loading = _Loader(self._network_file)

    def _port(self) -> Any:
        """The PyTorch port when it should answer now, else None (dlib's network answers)."""
        if self.engine == "dlib":
            return None
        if self._loading is None and self._dlib_seconds >= PORT_AFTER_SECONDS:
            self._loading = _Loader(self._network_file)
        if self._loading is None or (self.engine == "auto" and not self._loading.ready()):
            return None
        return self._loading.result()

    def chips(self, faces: list[np.ndarray], boxes: list[Box]) -> list[np.ndarray]:
        """dlib's 150 x 150 uint8 RGB chip of each face (5-point alignment, padding 0.25)."""
        chips = []
        for face, box in zip(faces, boxes, strict=True):
            image = face if face.dtype == np.uint8 else np.clip(face * 255 + 0.5, 0, 255).astype(np.uint8)
            scale = WORK_SIZE / image.shape[1]
            size = (WORK_SIZE, round(image.shape[0] * scale))
            image = np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC))
            x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
            shape = self._shape(image, self._dlib.rectangle(x0, y0, x1, y1))
            chips.append(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))
        return chips

    def embed(self, faces: list[np.ndarray], boxes: list[Box]) -> np.ndarray:
        """128-d embeddings (N x 128 float32) of face images (RGB, uint8 or float in [0, 1]), each with
        its face box (x0, y0, x1, y1) in that image's pixels."""
        if not faces:
            return np.zeros((0, DIMENSIONS), np.float32)
        chips = self.chips(faces, boxes)
        net = self._port()
        if net is None:
            if self._net is None:
                self._net = self._dlib.face_recognition_model_v1(str(self._network_file))
            start = time.perf_counter()
            descriptors = np.array([self._net.compute_face_descriptor(chip) for chip in chips], np.float32)
            self._dlib_seconds += time.perf_counter() - start
            return descriptors
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.stack(chips).astype(np.float32).transpose(0, 3, 1, 2).copy())
            return net(batch).numpy().astype(np.float32)

    def embed_crops(self, crops: list[RGBImage], points: list[Points]) -> np.ndarray:
        """Embeddings (N x 128 float32) of aligned crops, each with its mesh in crop pixels (478 x 2 or x 3)."""
        return self.embed(crops, [points_box(p) for p in points])

    def embed_in_frame(self, rgb: RGBImage, faces: list[Landmarks]) -> np.ndarray:
        """Embeddings (N x 128 float32) of the faces with these meshes (frame pixels) in an RGB frame."""
        crops, points = [], []
        for landmarks in faces:
            aligned = align_face(rgb, landmarks, EMBED_ALIGN)
            crops.append(aligned.crop)
            points.append(transform_points(landmarks, aligned.frame_to_crop))
        return self.embed_crops(crops, points)


def distances(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """(N, M) Euclidean distances between N and M embeddings (each N x 128 / M x 128)."""
    if len(embeddings) == 0 or len(references) == 0:
        return np.zeros((len(embeddings), len(references)), np.float32)
    diff = embeddings[:, None, :].astype(np.float32) - references[None, :, :].astype(np.float32)
    return np.sqrt((diff**2).sum(axis=2))


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


@dataclass(frozen=True)
class IdentityMatch:
    """Which faces are a given person: those within ``distance`` of one of ``references`` (M x 128
    float32 embeddings) and, when ``others`` (K x 128) are given, nearer to the references than to any
    of them (a face between two known people goes to the nearer)."""

    references: np.ndarray = field(repr=False)
    distance: float = SAME_PERSON
    others: np.ndarray | None = field(default=None, repr=False)

    def matches(self, embeddings: np.ndarray) -> np.ndarray:
        """(N,) bool for N x 128 embeddings."""
        if len(embeddings) == 0:
            return np.zeros(0, bool)
        near = distances(embeddings, self.references).min(axis=1)
        result = near < self.distance
        if self.others is not None and len(self.others):
            result &= near < distances(embeddings, self.others).min(axis=1)
        return result
