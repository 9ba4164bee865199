"""Rebuild ``mean_face.txt``, the frontal mean-face template, from real faces.

Generalised Procrustes analysis in 3-D: every mesh is brought onto the running mean by a similarity
transform (removing position, size and head rotation, yaw included), the mean is recomputed, and this
repeats until it settles. The frontal projection of that mean, levelled on the eyes and scaled so
forehead-to-chin spans ``FACE_FRACTION`` of the crop, is the template. Run it when the landmark model
changes: ``python -m facetwin.faces.build_template VIDEO... [--every N]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facetwin.faces.align import FACE_FRACTION, umeyama
from facetwin.faces.detect import FaceDetector
from facetwin.faces.landmarks import FaceLandmarker
from facetwin.media import MediaSource, kind_of, read_frames

FOREHEAD, CHIN = 10, 152
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


def generalised_procrustes(shapes: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Mean shape of N x P x D landmark sets after removing similarity transforms."""
    mean = shapes[0] - shapes[0].mean(axis=0)
    mean /= np.linalg.norm(mean)
    for _ in range(iterations):
        aligned = []
        for shape in shapes:
            matrix = umeyama(shape, mean)
            aligned.append(shape @ matrix[:-1, :-1].T + matrix[:-1, -1])
        new_mean = np.mean(aligned, axis=0)
        new_mean -= new_mean.mean(axis=0)
        new_mean /= np.linalg.norm(new_mean)
        if np.abs(new_mean - mean).max() < 1e-7:
            return new_mean
        mean = new_mean
    return mean


def frontal_template(mean3d: np.ndarray) -> np.ndarray:
    """Project a mean 3-D mesh to the 2-D template in crop units (see the module docstring).

    GPA leaves the mean in the pose of its first shape, so the mesh is first turned into the face's
    own frame: x along the outer eye corners, y from forehead to chin, z out of the face. Its frontal
    projection is then symmetric, whatever pose the first face had.
    """
    x_axis = mean3d[LEFT_EYE_OUTER] - mean3d[RIGHT_EYE_OUTER]
    x_axis /= np.linalg.norm(x_axis)
    y_axis = mean3d[CHIN] - mean3d[FOREHEAD]
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    rotation = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])
    points = (mean3d @ rotation.T)[:, :2]
    height = np.linalg.norm(points[CHIN] - points[FOREHEAD])
    points /= height / FACE_FRACTION
    centre = np.array([points[:468, 0].min() + points[:468, 0].max(), points[FOREHEAD, 1] + points[CHIN, 1]]) / 2
    return points - centre + 0.5


def collect_landmarks(paths: list[Path], every: int) -> np.ndarray:
    detector, landmarker = FaceDetector(), FaceLandmarker()
    shapes = []
    for path in paths:
        for frame in read_frames(MediaSource(path, kind_of(path) or "video"), every=every):
            detections = detector.detect(frame.rgb)
            if detections:
                points = landmarker.landmarks(frame.rgb, detections[0])
                if points is not None:
                    shapes.append(points)
    return np.array(shapes, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("mean_face.txt"))
    args = parser.parse_args()
    shapes = collect_landmarks(args.videos, args.every)
    template = frontal_template(generalised_procrustes(shapes))
    header = f"facetwin mean face: frontal GPA mean of {len(shapes)} MediaPipe meshes; x y in crop units"
    np.savetxt(args.out, template, fmt="%.6f", header=header)
    print(f"wrote {args.out} from {len(shapes)} faces")


if __name__ == "__main__":
    main()
