"""Lip closing (convert.lips) on a real open mouth: franck opens his mouth from about frame 30."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.convert.lips import (
    LOWER_INNER,
    LOWER_OUTER,
    TOLERANCE,
    LipClosing,
    close_lips,
    down_axis,
    lip_gaps,
)
from facetwin.demo_data import DemoClips
from facetwin.faces.analyse import FaceAnalyser
from facetwin.media import MediaSource, read_frames
from facetwin.scoring.expression import expression


@pytest.fixture(scope="module")
def open_mouth(clips: DemoClips) -> tuple[np.ndarray, np.ndarray]:
    """The first frame of franck.mp4 after frame 30 whose mouth is open by over 0.15 inter-ocular
    distances, and its mesh."""
    analyser = FaceAnalyser(max_faces=1)
    try:
        for frame in read_frames(MediaSource(clips.franck, "video")):
            if frame.index < 30:
                continue
            if frame.index > 120:
                break
            found = analyser.locate(frame.rgb)
            if found and expression(found[0][1]).mouth_open > 0.15:
                return frame.rgb, found[0][1]
    finally:
        analyser.close()
    raise AssertionError("franck's mouth does not open between frames 30 and 120")


def _shut(mesh: np.ndarray) -> np.ndarray:
    """The mesh with its lower lip raised onto the upper one: the same face with the mouth closed."""
    down = down_axis(mesh.astype(np.float64))
    gaps = lip_gaps(mesh, down)
    shut = mesh.copy()
    for indices in (LOWER_INNER, LOWER_OUTER):
        shut[list(indices), :2] -= (gaps[:, None] * down).astype(np.float32)
    return shut


def _mouth_distance(mesh: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) float64: each pixel's distance from the mouth's centre (between its outer corners), in mouth
    half-widths."""
    centre = mesh[[61, 291], :2].mean(axis=0)
    half_width = float(np.linalg.norm(mesh[291, :2] - mesh[61, :2])) / 2
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(xs - centre[0], ys - centre[1]) / half_width


def test_lips_parted_more_than_the_source_close_and_nothing_else_moves(open_mouth: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = open_mouth
    before = expression(mesh).mouth_open
    out, closing = close_lips(rgb, _shut(mesh), mesh)
    assert closing.interocular == pytest.approx(before - TOLERANCE, abs=0.02), "closed down to the tolerance"

    analyser = FaceAnalyser(max_faces=1)
    try:
        after = analyser.landmarker.landmarks_near(out, mesh)
    finally:
        analyser.close()
    assert after is not None
    gap = expression(after).mouth_open
    # the mesh sees the lips closer, though not shut: the teeth still show between them (0.189 -> 0.135)
    assert gap < before - 0.25 * closing.interocular, (before, gap, closing)

    changed = np.any(out != rgb, axis=-1)
    assert changed.any()
    assert _mouth_distance(mesh, rgb.shape)[changed].max() < 1.8, "only the mouth and the skin just around it move"
    for eye in (33, 263, 159, 386):  # eye corners and upper lids: untouched
        x, y = mesh[eye, :2].round().astype(int)
        assert np.array_equal(out[y - 3 : y + 4, x - 3 : x + 4], rgb[y - 3 : y + 4, x - 3 : x + 4])


def test_lips_are_never_opened_and_a_gap_like_the_source_stays(open_mouth: tuple[np.ndarray, np.ndarray]) -> None:
    rgb, mesh = open_mouth
    same, closing = close_lips(rgb, mesh, mesh)
    assert closing == LipClosing() and np.array_equal(same, rgb), "the swap's gap is the source's: nothing to do"
    assert close_lips(rgb, mesh, _shut(mesh))[1] == LipClosing(), "a swap with closed lips is not opened"
    slightly = mesh.copy()  # the source parted by a little less than the tolerance below the swap
    down = down_axis(mesh.astype(np.float64))
    interocular = float(np.linalg.norm(mesh[473, :2] - mesh[468, :2]))
    for indices in (LOWER_INNER, LOWER_OUTER):
        slightly[list(indices), :2] -= (0.8 * TOLERANCE * interocular * down).astype(np.float32)
    out, closing = close_lips(rgb, slightly, mesh)
    assert closing == LipClosing() and np.array_equal(out, rgb), "an excess within the tolerance is left alone"


def test_convert_closes_the_swaps_lips_around_the_mouth_only(model_dir: Path, clips: DemoClips, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The whole convert on eight of franck's frames as PNG files (A->B, his mouth shut; the test model,
    whose blurred lips the mesh reads parted by a little) with ``--restore mouth`` against ``--restore
    none``, closing every excess (no tolerance): the report counts the faces whose lips it closed, and the
    two outputs differ around the source's mouth (elsewhere only by what the watermark, which is fitted to
    the whole frame, changes with it: under a tenth of the mouth's mean change). PNG, not a video: an
    encoder's rate control spreads a change in one place over the whole frame and the frames before it."""
    from facetwin.convert import lips
    from facetwin.convert.run import convert
    from facetwin.media import read_picture
    from facetwin.options import BlendOptions, ConvertOptions

    monkeypatch.setattr(lips, "TOLERANCE", 0.0)
    folder = tmp_path / "frames"
    folder.mkdir()
    originals = {}
    for frame in read_frames(MediaSource(clips.franck, "video")):
        if frame.index >= 160:
            break
        if frame.index >= 112 and frame.index % 6 == 0:
            cv2.imwrite(str(folder / f"{frame.index}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            originals[f"{frame.index}.png"] = frame.rgb
    reports = {regions: convert(folder, model_dir, tmp_path / regions, ConvertOptions(direction="a2b", blend=BlendOptions(restore=regions)))
               for regions in ("none", "mouth")}  # fmt: skip
    closed = reports["mouth"].lips_closed
    assert reports["none"].lips_closed == 0
    assert reports["mouth"].faces == len(originals) and len(originals) // 4 <= closed, (closed, reports["mouth"].faces)  # 4 of 8

    analyser = FaceAnalyser(max_faces=1)
    differing = 0
    try:
        for name, original in originals.items():
            plain, shut = (read_picture(tmp_path / regions / name).rgb for regions in ("none", "mouth"))
            change = np.abs(plain.astype(np.int16) - shut.astype(np.int16)).max(axis=-1)
            if not change.any():
                continue
            differing += 1
            mouth = _mouth_distance(analyser.locate(original)[0][1], change.shape) < 1.8
            assert change[~mouth].mean() < 0.1 * change[mouth].mean(), (name, change[~mouth].mean(), change[mouth].mean())
    finally:
        analyser.close()
    assert differing >= closed, "each face whose lips were closed differs from the plain swap"
