"""Small faces in large frames: the case of issue 16, where a 50 px face in a 1280x720 frame was never found.

The clip is built here from cap13: its first 2 s, each frame scaled to 200x150 (the face becomes about
48 px) and placed into a 1280x720 frame whose rest is a mosaic of cap13's own face-free left strip (a
wall map, a lamp, the wall), so that there is texture where a false face could be found.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from facetwin.demo_data import DemoClips
from facetwin.extract import ExtractOptions, extract
from facetwin.faces.tiling import INPUT, plan_levels
from facetwin.faceset import FaceSet

FRAME = (1280, 720)
INSET = (200, 150)
AT = (760, 420)  # where the scaled clip goes: its face lands near (840, 490)
SECONDS = 2


def _background(strip: np.ndarray) -> np.ndarray:
    """A 1280x720 mosaic of ``strip`` (a face-free piece of a real frame) at a few sizes, some mirrored."""
    import cv2

    width, height = FRAME
    out = np.zeros((height, width, 3), np.uint8)
    cells = [(0, 0, 420, 360), (420, 0, 460, 360), (880, 0, 400, 360), (0, 360, 300, 360), (300, 360, 520, 360), (820, 360, 460, 360)]
    for n, (x, y, w, h) in enumerate(cells):
        piece = strip[:, ::-1] if n % 2 else strip
        out[y : y + h, x : x + w] = cv2.resize(piece, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


@pytest.fixture(scope="module")
def small_face_clip(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("small") / "cap13_50px_720p.mp4"
    with av.open(str(clips.cap13)) as source, av.open(str(path), "w") as target:
        rate = source.streams.video[0].average_rate or Fraction(25)
        stream = target.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = FRAME[0], FRAME[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        background = None
        for index, frame in enumerate(source.decode(video=0)):
            if index >= SECONDS * rate:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if background is None:
                background = _background(rgb[:, :130])  # left of the face: map, lamp, wall
            canvas = background.copy()
            x, y = AT
            canvas[y : y + INSET[1], x : x + INSET[0]] = cv2.resize(rgb, INSET, interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
    return path


@pytest.mark.slow  # over 5 s: keeps make check under two minutes
def test_small_face_in_720p_is_found_on_nearly_every_frame_and_nothing_else(small_face_clip: Path, tmp_path: Path) -> None:
    report = extract([small_face_clip], tmp_path / "set", ExtractOptions())
    result = report.results[0]
    assert result.problem is None
    assert result.frames == SECONDS * 25
    assert result.frames_with_face >= 0.95 * result.frames
    with FaceSet(tmp_path / "set") as faceset:
        boxes = [face.box for face in faceset.faces()]
    assert len(boxes) == result.faces
    assert result.faces <= result.frames  # one face per frame at most: nothing found on the background
    sizes = [max(w, h) for _, _, w, h in boxes]
    assert 40 <= min(sizes) and max(sizes) <= 60, sizes  # the face of cap13 (95 px) halved
    x0, y0 = AT
    for x, y, w, h in boxes:  # every face is the pasted one, inside the scaled clip
        assert x0 <= x + w / 2 <= x0 + INSET[0] and y0 <= y + h / 2 <= y0 + INSET[1]


def test_min_face_is_an_absolute_size(small_face_clip: Path, tmp_path: Path) -> None:
    report = extract([small_face_clip], tmp_path / "set", ExtractOptions(every=15, min_face=64))
    assert report.results[0].frames == len(range(0, SECONDS * 25, 15))
    assert report.results[0].faces == 0
    assert report.results[0].problem == f"{small_face_clip}: no face found"


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160), (1080, 1920)])
def test_plan_covers_every_pixel_and_every_face_size(size: tuple[int, int]) -> None:
    width, height = size
    levels = plan_levels(width, height, 40)
    assert levels[0].smallest == 40 and levels[-1].largest >= min(width, height)
    for finer, coarser in zip(levels, levels[1:]):
        assert coarser.smallest <= finer.largest  # no face size falls between two levels
    for level in (level for level in levels if not level.whole_frame):
        seen = np.zeros((level.size[1], level.size[0]), bool)
        for tile in level.tiles:
            assert tile.x1 - tile.x0 <= INPUT and tile.y1 - tile.y0 <= INPUT
            seen[tile.y0 : tile.y1, tile.x0 : tile.x1] = True
        assert seen.all()
    assert plan_levels(400, 300, 40)[0].whole_frame  # talking-head frames keep one pass
