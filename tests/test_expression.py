"""Expression fidelity (scoring.expression) on known cases from a real clip: cap13 blinks at frame 98."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from facetwin.convert.restore import ExpressionKeeper, restore_mask
from facetwin.demo_data import DemoClips
from facetwin.faces.analyse import FaceAnalyser
from facetwin.media import MediaSource, read_frames
from facetwin.scoring.expression import (
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    Expression,
    blinks,
    closed_eyes,
    expression,
    eye_openness,
    fidelity,
)

FIRST, LAST = 80, 120


@pytest.fixture(scope="module")
def frames(clips: DemoClips) -> list[np.ndarray]:
    out = []
    for frame in read_frames(MediaSource(clips.cap13, "video")):
        if frame.index >= FIRST:
            out.append(frame.rgb)
        if frame.index == LAST:
            return out
    raise AssertionError("cap13 is shorter than expected")


def _expressions(frames: list[np.ndarray]) -> tuple[list[Expression | None], list[np.ndarray | None]]:
    analyser = FaceAnalyser(max_faces=1)
    try:
        meshes = [found[0][1] if (found := analyser.locate(f)) else None for f in frames]
    finally:
        analyser.close()
    return [None if m is None else expression(m) for m in meshes], meshes


def test_a_clip_against_itself_follows_perfectly(frames: list[np.ndarray]) -> None:
    faces, _ = _expressions(frames)
    assert all(f is not None for f in faces)
    (first, last), = blinks(eye_openness(faces))
    # in these 41 frames the open level is frames 80-90's wide eyes, so the lowered lids after the blink
    # (frames 102-112, 0.39-0.42 of it) count as closed as well: one blink of 15 frames
    assert first + FIRST == 98 and 2 <= last - first + 1 <= 16, "cap13 blinks once, at frame 98"
    result = fidelity(faces, faces)
    assert result.source_blinks == result.reproduced_blinks == 1 and result.blink_share == 1.0
    for feature, r in result.correlation.items():
        assert r == pytest.approx(1.0) or math.isnan(r), feature
    assert all(e == 0 for e in result.mean_abs_error.values())


def test_a_blink_whose_reopening_wobbles_is_one_blink(frames: list[np.ndarray]) -> None:
    """cap13's blink with its reopening made to wobble: closed, not quite reopened (65 % of the open level),
    closed again: one blink (as the mesh measured one clean clone's clip: 0.26, 0.27, 0.26 around a closed
    line of 0.26); reopened fully in between: two."""
    faces, _ = _expressions(frames)
    openness = eye_openness(faces)
    (first, last), = blinks(openness)
    wobble = openness.copy()
    wobble[last + 1], wobble[last + 2 : last + 4] = 0.65, 0.3
    assert blinks(wobble) == [(first, last + 3)]
    twice = wobble.copy()
    twice[last + 1] = 1.0
    assert blinks(twice) == [(first, last), (last + 2, last + 3)]


def test_a_blink_the_mesh_follows_in_one_eye_counts_and_a_squint_does_not(clips: DemoClips) -> None:
    """franck blinks at frames 591-592 (both eyes visibly shut) but the mesh closes only his right eye: the
    mean of both eyes stays at 63 % of its open level, which a mean-of-both-eyes count misses; the more
    closed eye against its own open level counts it. His laughing squint (frames 59-79, both eyes narrowed
    and visible) is not a blink."""
    windows = {"blink": (570, 610), "squint": (40, 100)}
    picked: dict[str, list[np.ndarray]] = {name: [] for name in windows}
    end = max(last for _, last in windows.values())
    for frame in read_frames(MediaSource(clips.franck, "video")):
        for name, (first, last) in windows.items():
            if first <= frame.index <= last:
                picked[name].append(frame.rgb)
        if frame.index >= end:
            break
    faces = {name: _expressions(frames)[0] for name, frames in picked.items()}
    assert all(f is not None for seq in faces.values() for f in seq)
    start = windows["blink"][0]
    assert [(first + start, last + start) for first, last in blinks(eye_openness(faces["blink"]))] == [(591, 592)]
    both = np.array([f.eyes for f in faces["blink"] if f is not None])
    assert both.min() > 0.6 * np.percentile(both, 90), "the mean of both eyes never reads closed here"
    assert blinks(eye_openness(faces["squint"])) == []


def test_eyes_painted_open_reproduce_no_blink(frames: list[np.ndarray]) -> None:
    faces, meshes = _expressions(frames)
    open_frame, open_mesh = frames[5], meshes[5]  # frame 85: eyes open
    assert open_mesh is not None and faces[5] is not None and faces[5].eyes > 0.3
    painted = []
    for frame in frames:  # the head barely moves in these 1.6 s: paste frame 85's eyes in place
        copy = frame.copy()
        for eye in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
            x0, y0 = open_mesh[list(eye), :2].min(axis=0).astype(int) - 6
            x1, y1 = open_mesh[list(eye), :2].max(axis=0).astype(int) + 6
            copy[y0:y1, x0:x1] = open_frame[y0:y1, x0:x1]
        painted.append(copy)
    swap, _ = _expressions(painted)
    result = fidelity(faces, swap)
    assert result.source_blinks == 1 and result.reproduced_blinks == 0 and result.blink_share == 0.0
    assert result.mean_abs_error["eye_right"] > 0.02 and result.mean_abs_error["eye_left"] > 0.02
    assert result.correlation["mouth_open"] > 0.9 > result.correlation["eye_left"], "only the eyes were painted"


def test_features_of_an_open_mouth_and_a_turned_gaze() -> None:
    rest = np.zeros((478, 2))
    rest[[RIGHT_EYE_EAR[0], RIGHT_EYE_EAR[3], LEFT_EYE_EAR[3], LEFT_EYE_EAR[0]], 0] = [0, 30, 70, 100]
    for eye, centre in ((RIGHT_EYE_EAR, 15), (LEFT_EYE_EAR, 85)):
        rest[list(eye[1:3]), 0], rest[list(eye[4:6]), 0] = centre, centre
        rest[list(eye[1:3]), 1], rest[list(eye[4:6]), 1] = -5, 5  # lids 10 px apart over a 30 px eye
    rest[[468, 473]] = [[15, 0], [85, 0]]
    rest[[61, 291]] = [[30, 60], [70, 60]]
    rest[[13, 14]] = [[50, 58], [50, 62]]
    face = expression(rest)
    assert face.eye_right == pytest.approx(10 / 30) and face.eye_left == pytest.approx(10 / 30)
    assert face.mouth_open == pytest.approx(4 / 70) and face.mouth_width == pytest.approx(40 / 70)
    assert face.gaze_x == pytest.approx(0) and face.gaze_y == pytest.approx(0)
    moved = rest.copy()
    moved[[468, 473], 0] += 7.5  # both irises half way to the image's right corners
    assert expression(moved).gaze_x == pytest.approx(0.5)


@pytest.mark.slow  # over 5 s: keeps make check under two minutes
def test_expression_balance_draws_rare_states_more_often(small_sets: dict[str, Path]) -> None:
    """The training draw (train.data, --balance expression): a pure function of the seed and the step, and
    closed-eye or open-mouth faces come up more often than uniformly."""
    from facetwin.facepool import load_pool
    from facetwin.models.registry import build_model
    from facetwin.options import AugmentSettings
    from facetwin.train.data import PairDataset, draw_weights, expression_bins

    pool = load_pool(small_sets["b"], 103)
    bins = expression_bins(pool)
    common = np.bincount(bins).argmax()
    cumulative = draw_weights(pool, "expression")
    assert cumulative is not None and cumulative[-1] == pytest.approx(1.0)
    probability = np.diff(np.concatenate([[0.0], cumulative]))
    rare = bins != common
    assert rare.any(), "six seconds of talking hold more than one expression state"
    assert probability[rare].sum() > rare.mean(), "rare states are drawn more often than their share"
    spec = build_model("lightweight").spec
    balanced = PairDataset({"a": pool, "b": pool}, spec, seed=0, settings=AugmentSettings(), balance="expression")
    again = PairDataset({"a": pool, "b": pool}, spec, seed=0, settings=AugmentSettings(), balance="expression")
    assert all(torch.equal(balanced[7][key], again[7][key]) for key in balanced[7])


def test_restore_keeps_the_source_eyes_through_the_blink_and_nowhere_else(frames: list[np.ndarray]) -> None:
    """convert --restore eyes: weight 1 on the blink's closed frames, 0 where the eyes are open; the mask
    covers both eyes in the aligned crop and leaves the rest of the face to the swap."""
    faces, meshes = _expressions(frames)
    keeper = ExpressionKeeper("eyes")
    weights = [keeper.weights(1, mesh) for mesh in meshes if mesh is not None]
    closed = closed_eyes(eye_openness(faces))
    eyes = np.array([(w.eye_right + w.eye_left) / 2 for w in weights])
    assert closed.any() and eyes[closed].min() > 0.9, f"restored through the blink: {eyes[closed].round(2)}"
    open_frames = np.array([f.eyes for f in faces]) > 0.9 * np.percentile([f.eyes for f in faces], 90)
    assert eyes[open_frames].max() < 0.05, "open eyes stay the swap's"
    assert all(w.mouth == 0.0 for w in weights), "--restore eyes leaves the mouth alone"

    blink = int(np.argmax(closed))
    analyser = FaceAnalyser(size=256, max_faces=1)
    try:
        aligned = analyser.analyse(frames[blink])[0].aligned
    finally:
        analyser.close()
    mask = restore_mask(meshes[blink], aligned.frame_to_crop, 256, weights[blink])
    in_crop = meshes[blink][:, :2] @ aligned.frame_to_crop[:, :2].T + aligned.frame_to_crop[:, 2]
    for indices in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
        x, y = in_crop[list(indices)].mean(axis=0).round().astype(int)
        assert mask[y, x] == pytest.approx(weights[blink].eye_right if indices is RIGHT_EYE_EAR else weights[blink].eye_left, abs=0.02)
    assert (mask > 0.01).mean() < 0.12, "only the eyes: most of the crop is the swap's"
    nose_tip = in_crop[4].round().astype(int)
    assert mask[nose_tip[1], nose_tip[0]] == 0.0


def test_convert_with_eye_restore_reproduces_the_blink_the_model_alone_misses(
    model_dir: Path, clips: DemoClips, tmp_path: Path
) -> None:
    """The whole convert on four seconds of cap13 around its blink (frames 60-159: eyes opened wide, then
    the blink), with the test model, without and with ``--restore eyes``: the output's own mesh sees the
    eyes close during the source's blink only with it, and the swap follows the source's eye openness."""
    from conftest import cut_clip
    from facetwin.convert.run import convert
    from facetwin.options import BlendOptions, ConvertOptions

    source = cut_clip(clips.cap13, tmp_path / "blink.mp4", seconds=4.0, start=60 / 25)
    results, restored = {}, {}
    for regions in ("none", "eyes"):
        out = tmp_path / f"restore_{regions}.mp4"
        report = convert(source, model_dir, out, ConvertOptions(direction="b2a", blend=BlendOptions(restore=regions)))
        restored[regions] = report.restored
        clip_frames = [f.rgb for f in read_frames(MediaSource(source, "video"))]
        swapped = [f.rgb for f in read_frames(MediaSource(out, "video"))]
        results[regions] = fidelity(_expressions(clip_frames)[0], _expressions(swapped)[0])
    none, eyes = results["none"], results["eyes"]
    assert none.source_blinks == eyes.source_blinks == 1
    assert restored["none"] == 0 and 2 <= restored["eyes"] < report.frames, restored  # the report says where it acted
    assert none.faces > 30 and eyes.faces > 30, "the output's faces are found"
    assert eyes.reproduced_blinks == eyes.source_blinks > none.reproduced_blinks, (none, eyes)
    eye_r = {k: (v.correlation["eye_right"] + v.correlation["eye_left"]) / 2 for k, v in results.items()}
    assert eye_r["eyes"] > max(0.8, eye_r["none"]), eye_r  # none: 0.68-0.79 over runs of the 30-step test model
