"""Alignment: a similarity transform (Umeyama) from a face's landmarks to a mean-face template.

The template (``mean_face.txt``) is the frontal mean of the 478-point mesh, built by generalised
Procrustes analysis over real faces (``python -m facetwin.faces.build_template``). Only the rigid-ish
parts of the face drive the fit (eyes, brows, nose, mouth corners), so an opening jaw does not shift
the crop. The crop covers forehead to chin with a margin; the matrix is kept so that convert can warp
the swapped face back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import cv2
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as mesh

RIGHT_IRIS = 468  # centre of the subject's right iris in the refined mesh
LEFT_IRIS = 473
MOUTH_CORNERS = (61, 291)
FACE_FRACTION = 0.62  # share of the crop's height taken by forehead-to-chin (mesh points 10 to 152)


def _indices(*connection_sets: frozenset[tuple[int, int]]) -> np.ndarray:
    return np.array(sorted({i for edges in connection_sets for edge in edges for i in edge}), dtype=np.int64)


ALIGN_INDICES = np.concatenate(
    [
        _indices(mesh.FACEMESH_LEFT_EYE, mesh.FACEMESH_RIGHT_EYE, mesh.FACEMESH_LEFT_EYEBROW),
        _indices(mesh.FACEMESH_RIGHT_EYEBROW, mesh.FACEMESH_NOSE),
        np.array(MOUTH_CORNERS),
    ]
)
ALIGN_INDICES = np.unique(ALIGN_INDICES)


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


@cache
def mean_face() -> np.ndarray:
    """The 478x2 template in crop units: (0, 0) top-left, (1, 1) bottom-right of the aligned crop."""
    text = resources.files("facetwin.faces").joinpath("mean_face.txt").read_text()
    return np.loadtxt(text.splitlines(), dtype=np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop and the 2x3 matrix that took frame pixels to crop pixels."""

    crop: np.ndarray = field(repr=False)
    matrix: np.ndarray

    @property
    def size(self) -> int:
        return int(self.crop.shape[0])


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity matrix from frame pixels to a ``size`` x ``size`` aligned crop."""
    template = mean_face()[ALIGN_INDICES] * size
    return umeyama(landmarks[ALIGN_INDICES, :2], template)[:2]


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 256) -> AlignedFace:
    matrix = alignment_matrix(landmarks, size)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(crop=crop, matrix=matrix)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an Nx2 (or Nx3, z ignored) array of points."""
    return points[:, :2] @ matrix[:, :2].T + matrix[:, 2]


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """The two iris centres (subject's right, left) as a 2x2 array."""
    return landmarks[[RIGHT_IRIS, LEFT_IRIS], :2]


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian on the grey crop: low values mean motion blur or defocus."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
