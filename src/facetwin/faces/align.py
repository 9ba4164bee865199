"""Alignment: a similarity transform (Umeyama) from a face's landmarks to a mean-face template.

The template (``mean_face.txt``) is the frontal mean of the 478-point mesh, built by generalised
Procrustes analysis over real faces (``python -m facetwin.faces.build_template``). Only the rigid-ish
parts of the face drive the fit (eyes, brows, nose, mouth corners), so an opening jaw does not shift
the crop. The crop covers forehead to chin with a margin; the matrix is kept so that convert can warp
the swapped face back exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import cv2
import numpy as np

from facetwin.arrays import Affine, Landmarks, Points, RGBImage
from facetwin.faces.regions import LEFT_EYE, LEFT_EYEBROW, NOSE, RIGHT_EYE, RIGHT_EYEBROW

RIGHT_IRIS = 468  # centre of the subject's right iris in the refined mesh
LEFT_IRIS = 473
MOUTH_CORNERS = (61, 291)
FACE_FRACTION = 0.62  # share of the crop's height taken by forehead-to-chin (mesh points 10 to 152)

ALIGN_INDICES = np.unique(np.array(LEFT_EYE + RIGHT_EYE + LEFT_EYEBROW + RIGHT_EYEBROW + NOSE + MOUTH_CORNERS, np.int64))
"""The mesh points that drive the fit: eyes, brows, nose and mouth corners (not the jaw)."""


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama 1991).

    Returns the (d+1)x(d+1) homogeneous matrix. Works in any dimension, so the template builder uses
    it in 3-D and alignment in 2-D.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(dim)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(axis=0).sum() if with_scale else 1.0
    matrix = np.eye(dim + 1)
    matrix[:dim, :dim] = scale * rotation
    matrix[:dim, dim] = dst_mean - scale * rotation @ src_mean
    return matrix


def _template_text() -> str:
    return resources.files("facetwin.faces").joinpath("mean_face.txt").read_text()


@cache
def mean_face() -> np.ndarray:
    """The 478x2 template in crop units: (0, 0) top-left, (1, 1) bottom-right of the aligned crop."""
    return np.loadtxt(_template_text().splitlines(), dtype=np.float64).reshape(-1, 2)


@cache
def mean_face_sha256() -> str:
    """SHA-256 of the template file: face sets and model folders record it, because a face aligned to one
    template is misplaced by a model trained on another (rebuilding the template invalidates both)."""
    return hashlib.sha256(_template_text().encode()).hexdigest()


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop (S x S x 3 uint8 RGB) and the 2x3 matrix that took frame pixels to crop pixels."""

    crop: RGBImage = field(repr=False)
    frame_to_crop: Affine

    @property
    def size(self) -> int:
        return int(self.crop.shape[0])


def alignment_matrix(landmarks: Landmarks, size: int) -> Affine:
    """``frame_to_crop``: the 2x3 similarity (Umeyama) from frame pixels to a ``size`` x ``size`` aligned
    crop, fitted on ``ALIGN_INDICES`` of the mesh (478 x 2 or x 3, frame pixels)."""
    template = mean_face()[ALIGN_INDICES] * size
    return umeyama(landmarks[ALIGN_INDICES, :2], template)[:2]


def align_face(rgb: RGBImage, landmarks: Landmarks, size: int = 256) -> AlignedFace:
    """Cut the aligned ``size`` px crop of the face with these landmarks (bicubic, edges replicated)."""
    frame_to_crop = alignment_matrix(landmarks, size)
    crop = cv2.warpAffine(rgb, frame_to_crop, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(crop=crop, frame_to_crop=frame_to_crop)


def transform_points(points: np.ndarray, matrix: Affine) -> Points:
    """Apply a 2x3 affine matrix to an Nx2 (or Nx3, z ignored) array of points."""
    return points[:, :2] @ matrix[:, :2].T + matrix[:, 2]


def compose(outer: Affine, inner: Affine) -> Affine:
    """The 2x3 matrix that applies ``inner`` then ``outer`` (``b_to_c`` after ``a_to_b`` is ``a_to_c``)."""
    full = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return full[:2]


def crop_to_model_matrix(crop_size: int, model_size: int, coverage: float) -> Affine:
    """``crop_to_model``: the 2x3 matrix taking an aligned crop of ``crop_size`` px to a model's input: its
    centred ``coverage`` share (0-1), resized to ``model_size`` px."""
    inner = crop_size * coverage
    scale = model_size / inner
    offset = (crop_size - inner) / 2
    return np.array([[scale, 0, -offset * scale], [0, scale, -offset * scale]], dtype=np.float64)


def eye_centres(landmarks: Landmarks) -> np.ndarray:
    """The two iris centres (subject's right, left) as a 2x2 array."""
    return landmarks[[RIGHT_IRIS, LEFT_IRIS], :2]


def sharpness(crop: RGBImage) -> float:
    """Variance of the Laplacian on the grey crop: low values mean motion blur or defocus."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
