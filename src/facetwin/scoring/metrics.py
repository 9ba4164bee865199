"""Per-face quality figures: reconstruction inside the face mask, landmark and head-pose agreement.

Images are float arrays in [0, 1] (H x W x 3), masks H x W in [0, 1]. SSIM is the training loss's own
Gaussian-window SSIM (Wang et al. 2004), so the number a user watches in training and here is one.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from facetwin.faces.align import eye_centres
from facetwin.faces.pose import head_pose
from facetwin.models.losses import ssim_map


def _weighted(values: np.ndarray, mask: np.ndarray) -> float:
    weights = np.broadcast_to(mask[..., None] if values.ndim == 3 else mask, values.shape)
    return float((values * weights).sum() / max(weights.sum(), 1e-8))


def masked_l1(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    return _weighted(np.abs(image - reference), mask)


def masked_psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    mse = _weighted((image - reference) ** 2, mask)
    return 100.0 if mse <= 1e-10 else 10 * math.log10(1.0 / mse)


def masked_ssim(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    to_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float()  # noqa: E731
    per_pixel = ssim_map(to_tensor(image), to_tensor(reference))[0].numpy().transpose(1, 2, 0)
    return _weighted(per_pixel, mask)


def landmark_error(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance between two 478-point meshes, in units of the reference's inter-ocular distance."""
    eyes = eye_centres(reference)
    interocular = float(np.linalg.norm(eyes[0] - eyes[1]))
    return float(np.linalg.norm(points[:, :2] - reference[:, :2], axis=1).mean() / max(interocular, 1e-6))


def pose_error(points: np.ndarray, reference: np.ndarray, image_size: int) -> float:
    """Mean absolute difference of yaw, pitch and roll, in degrees."""
    return float(np.abs(head_pose(points, image_size) - head_pose(reference, image_size)).mean())


class MeshReader:
    """The MediaPipe mesh on a model-sized face (float32 in [0, 1]), scaled up to ``size`` first (the mesh
    model wants ~192 px). Points come back in pixels of that ``size`` x ``size`` image.

    MediaPipe is imported here, not with the module: it takes ~1 s, and training imports this module for
    held-out scores that read no mesh."""

    size = 256

    def __init__(self) -> None:
        from facetwin.faces.landmarks import FaceLandmarker

        self._landmarker = FaceLandmarker()

    def read(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """478 x 2 points, or None when the mesh is not found; ``box`` (x0, y0, x1, y1) in ``image`` pixels."""
        scale = self.size / image.shape[1]
        big = cv2.resize(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), (self.size, self.size), interpolation=cv2.INTER_CUBIC)
        x0, y0, x1, y1 = (v * scale for v in box)
        from facetwin.faces.detect import Detection  # imported with the landmarker already

        points = self._landmarker.landmarks(big, Detection((x0, y0, x1 - x0, y1 - y0), 1.0, np.zeros((6, 2), np.float32)))
        return None if points is None else points[:, :2]

    def close(self) -> None:
        self._landmarker.close()
