"""Every entry of every registry, run on real faces: a new model, colour, mask or blend mode is tested
here without a new test (the parametrisation reads the registries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facetwin.convert.blend import BLEND_MODES, paste
from facetwin.convert.colour import COLOUR_MODES
from facetwin.convert.masks import MASK_MODES
from facetwin.facepool import load_pool, model_view, working_size
from facetwin.faces.align import alignment_matrix, compose, crop_to_model_matrix
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.regions import hull_mask
from facetwin.media import MediaSource, read_frames
from facetwin.models.base import SIDES
from facetwin.models.registry import MODELS, build_model
from facetwin.options import BlendOptions
from facetwin.swapper import SwappedFace

SIZE, COVERAGE = 64, 0.625


@pytest.fixture(scope="module")
def faces(small_sets: dict[str, Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One real face of each person in the model frame (64 px, 62.5 %): image and face-hull mask."""
    out = {}
    for side in SIDES:
        pool = load_pool(small_sets[side], working_size(SIZE, COVERAGE))
        view = model_view(pool.crop(5), pool.points(5), SIZE, crop_to_model_matrix(pool.size, SIZE, COVERAGE))
        out[side] = (view.image, view.mask)
    return out


@pytest.fixture(scope="module")
def frame_and_face(short_clips: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """A real frame of cap12 and the landmarks of the face in it."""
    frame = next(f for f in read_frames(MediaSource(short_clips["b"], "video")) if f.index == 40)
    analyser = FaceAnalyser(max_faces=1)
    try:
        (_, landmarks), = analyser.locate(frame.rgb)
    finally:
        analyser.close()
    return frame.rgb, landmarks


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_a_step_on_real_faces(name: str, small_sets: dict[str, Path]) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    spec = model.spec
    batch = {}
    for side in SIDES:
        pool = load_pool(small_sets[side], working_size(spec.size, spec.coverage))
        views = [model_view(pool.crop(i), pool.points(i), spec.size,
                            crop_to_model_matrix(pool.size, spec.size, spec.coverage)) for i in (3, 30)]  # fmt: skip
        batch[f"{side}_source"] = batch[f"{side}_target"] = torch.from_numpy(np.stack([v.image for v in views]).transpose(0, 3, 1, 2))
        batch[f"{side}_mask"] = torch.from_numpy(np.stack([v.mask for v in views]))[:, None]
        batch[f"{side}_priority"] = torch.from_numpy(np.stack([2 * np.maximum(v.eyes, v.mouth) for v in views]))[:, None]
    outputs = model.forward_pair(batch["a_source"], batch["b_source"])
    for side in SIDES:
        assert outputs[side].face.shape == (2, 3, spec.size, spec.size)
        assert (outputs[side].mask is not None) == spec.has_mask
        assert 0 <= float(outputs[side].face.detach().min()) and float(outputs[side].face.detach().max()) <= 1
    losses = model.loss(outputs, batch)
    assert set(losses) == set(SIDES) and all(torch.isfinite(v) and v > 0 for v in losses.values())
    optimizer = model.configure_optimizer(torch.device("cpu"))
    optimizer.zero_grad()
    (losses["a"] + losses["b"]).backward()
    optimizer.step()
    with torch.no_grad():
        again = model.loss(model.forward_pair(batch["a_source"], batch["b_source"]), batch)
    assert float(again["a"] + again["b"]) < float((losses["a"] + losses["b"]).detach()), "a step on these faces lowers their loss"


@pytest.mark.parametrize("name", COLOUR_MODES.names())
def test_every_colour_mode_moves_towards_the_reference(name: str, faces: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    (face, mask), (reference, _) = faces["a"], faces["b"]
    out = COLOUR_MODES[name](face.copy(), reference, mask)
    assert out.shape == face.shape and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    inside = mask > 0.5
    before = np.abs(face[inside].mean(0) - reference[inside].mean(0)).sum()
    after = np.abs(out[inside].mean(0) - reference[inside].mean(0)).sum()
    assert after <= before + 1e-6, "a colour transfer never moves the face's colour away from the reference"


@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize("name", MASK_MODES.names())
def test_every_mask_mode_covers_the_face(name: str, learned: bool, frame_and_face: tuple[np.ndarray, np.ndarray]) -> None:
    frame, landmarks = frame_and_face
    frame_to_model = compose(crop_to_model_matrix(256, SIZE, COVERAGE), alignment_matrix(landmarks, 256))
    hull = hull_mask(landmarks, SIZE, frame_to_model)
    swapped = SwappedFace(np.zeros((SIZE, SIZE, 3), np.float32), hull * 0.9 if learned else None, frame_to_model)
    mask = MASK_MODES[name](swapped, landmarks)
    assert mask.shape == (SIZE, SIZE) and mask.min() >= 0 and mask.max() <= 1
    assert 0.2 < mask.mean() < 0.9, "a face mask covers the face, not the whole crop or nothing"
    ys, xs = np.nonzero(mask > 0.5)
    assert abs(xs.mean() - SIZE / 2) < SIZE / 8 and abs(ys.mean() - SIZE / 2) < SIZE / 4


@pytest.mark.parametrize("name", BLEND_MODES.names())
def test_every_blend_mode_changes_the_face_and_nothing_else(name: str, frame_and_face: tuple[np.ndarray, np.ndarray],
                                                            faces: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    frame, landmarks = frame_and_face
    frame_to_model = compose(crop_to_model_matrix(256, SIZE, COVERAGE), alignment_matrix(landmarks, 256))
    other_face = faces["a"][0]  # Franck's face pasted onto B's frame
    swapped = SwappedFace(other_face, None, frame_to_model)
    out = paste(frame, swapped, landmarks, BlendOptions(blend=name, colour="none"))
    assert out.shape == frame.shape and out.dtype == np.uint8
    changed = np.abs(out.astype(int) - frame.astype(int)).max(axis=2) > 0
    x0, y0 = landmarks[:, 0].min(), landmarks[:, 1].min()
    x1, y1 = landmarks[:, 0].max(), landmarks[:, 1].max()
    ys, xs = np.nonzero(changed)
    margin = 0.15 * (x1 - x0)
    assert changed.sum() > 0.2 * (x1 - x0) * (y1 - y0), "the face region changed"
    assert xs.min() >= x0 - margin and xs.max() <= x1 + margin and ys.min() >= y0 - margin and ys.max() <= y1 + margin
