"""Extraction on the real demo clips: coverage, one face per frame, stable alignment, stored records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetwin.extract import ExtractReport
from facetwin.faces.align import align_face, alignment_matrix, eye_centres, transform_points
from facetwin.faceset import FaceSet
from facetwin.media import MediaSource, read_frames

N_FRANCK_SAMPLED = len(range(0, 4800, 10))
N_CAP12_SAMPLED = len(range(0, 1337, 10))


def _coverage_and_stability(folder: Path) -> tuple[int, int, list[int], np.ndarray]:
    with FaceSet(folder) as store:
        counts = store.counts()[0]
        records = store.faces()
    per_frame = np.bincount([r.frame_index for r in records]).tolist()
    eyes = np.array([transform_points(eye_centres(r.landmarks), r.frame_to_crop) / r.crop_size for r in records])
    return counts.frames, counts.frames_with_face, [c for c in per_frame if c], eyes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "sampled", "min_share"), [("franck_set", N_FRANCK_SAMPLED, 0.99), ("cap12_set", N_CAP12_SAMPLED, 0.97)]
)
def test_faces_found_once_per_frame_and_aligned_stably(
    request: pytest.FixtureRequest, fixture: str, sampled: int, min_share: float
) -> None:
    folder, report = request.getfixturevalue(fixture)
    assert report.exit_code == 0 and not report.problems
    frames, with_face, faces_per_frame, eyes = _coverage_and_stability(folder)
    assert frames == sampled
    assert with_face / frames >= min_share
    assert set(faces_per_frame) == {1}, "a frame of a one-person clip gave more than one face"
    spread = eyes.std(axis=0)  # (2 eyes, x/y) in crop units
    assert spread.max() <= 0.02, f"eye centres wander by {spread.max():.4f} of the crop"
    assert eyes[:, 0, 0].mean() < eyes[:, 1, 0].mean(), "the subject's right eye should be on the image's left"


def test_records_reproduce_their_crops(franck_set: tuple[Path, ExtractReport], clips) -> None:
    folder, _ = franck_set
    with FaceSet(folder) as store:
        record = store.faces()[7]
        crop = store.load_crop(record)
    assert crop.shape == (256, 256, 3) and record.crop_size == 256
    assert record.landmarks.shape == (478, 3) and 0.5 <= record.score <= 1.0 and record.sharpness > 0
    np.testing.assert_allclose(alignment_matrix(record.landmarks, 256), record.frame_to_crop, atol=1e-4)
    frame = next(f for f in read_frames(MediaSource(clips.franck, "video"), every=10) if f.index == record.frame_index)
    assert abs(frame.seconds - record.seconds) < 1e-6
    again = align_face(frame.rgb, record.landmarks, 256).crop
    assert np.abs(again.astype(int) - crop.astype(int)).mean() < 1.0  # PNG is lossless: same pixels
    x, y, w, h = record.box
    centre = record.landmarks[:, :2].mean(axis=0)
    assert x < centre[0] < x + w and y < centre[1] < y + h, "the mesh must sit inside its detection box"
