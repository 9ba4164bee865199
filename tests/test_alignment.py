"""The Umeyama fit and the template, checked against known transforms of real landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin.extract import ExtractReport
from facetwin.faces.align import ALIGN_INDICES, mean_face, umeyama
from facetwin.faceset import FaceSet


def test_umeyama_recovers_a_known_similarity(franck_set: tuple[Path, ExtractReport]) -> None:
    folder, _ = franck_set
    with FaceSet(folder) as store:
        points = store.faces()[0].landmarks[:, :2].astype(np.float64)
    angle, scale, shift = np.deg2rad(17.0), 1.7, np.array([-40.0, 12.5])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points @ rotation.T + shift
    matrix = umeyama(points, moved)
    np.testing.assert_allclose(matrix[:2, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:2, 2], shift, atol=1e-6)


def test_umeyama_never_returns_a_reflection() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 2))
    mirrored = src * np.array([-1.0, 1.0])
    assert np.linalg.det(umeyama(src, mirrored)[:2, :2]) > 0


def test_template_is_a_frontal_face_inside_the_crop() -> None:
    template = mean_face()
    assert template.shape == (478, 2)
    assert (template > 0).all() and (template < 1).all()
    right_eye, left_eye, nose_tip = template[468], template[473], template[1]
    assert abs(right_eye[1] - left_eye[1]) < 0.01, "eyes level"
    assert abs((right_eye[0] + left_eye[0]) / 2 - nose_tip[0]) < 0.01, "nose between the eyes"
    assert right_eye[1] < nose_tip[1] < template[152][1], "eyes above nose above chin"
    assert len(ALIGN_INDICES) > 60 and 152 not in ALIGN_INDICES and 17 not in ALIGN_INDICES, "jaw and lower lip stay out of the fit"


def test_mesh_regions_are_mediapipes() -> None:
    """faces.regions writes MediaPipe's mesh topology out (so that importing it stays cheap): it must be it."""
    from mediapipe.python.solutions import face_mesh_connections as mesh

    from facetwin.faces import regions

    def points(*connections: frozenset[tuple[int, int]]) -> tuple[int, ...]:
        return tuple(sorted({i for edges in connections for edge in edges for i in edge}))

    assert regions.FACE_OVAL == points(mesh.FACEMESH_FACE_OVAL)
    assert regions.LEFT_EYE == points(mesh.FACEMESH_LEFT_EYE) and regions.RIGHT_EYE == points(mesh.FACEMESH_RIGHT_EYE)
    assert regions.LEFT_EYEBROW == points(mesh.FACEMESH_LEFT_EYEBROW)
    assert regions.RIGHT_EYEBROW == points(mesh.FACEMESH_RIGHT_EYEBROW)
    assert regions.NOSE == points(mesh.FACEMESH_NOSE) and regions.LIPS == points(mesh.FACEMESH_LIPS)
    assert regions.LEFT_IRIS[1:] == points(mesh.FACEMESH_LEFT_IRIS) and regions.RIGHT_IRIS[1:] == points(mesh.FACEMESH_RIGHT_IRIS)
