"""Bad input, images and folders, resume after kill -9, curation by deleting crops, `faceset info`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import cv2
import pytest

from conftest import run_cli
from facetwin.demo_data import DemoClips
from facetwin.extract import ExtractOptions, extract
from facetwin.faceset import FaceSet
from facetwin.media import MediaSource, read_frames


def _frames_as_images(video: Path, folder: Path, indices: list[int], crop: slice | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in read_frames(MediaSource(video, "video")):
        if frame.index in indices:
            rgb = frame.rgb if crop is None else frame.rgb[crop]
            path = folder / f"frame_{frame.index:05d}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            paths.append(path)
        if frame.index >= max(indices):
            break
    return paths


@pytest.fixture(scope="module")
def no_face_image(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real frame of the Franck clip cut down to its top-left background: no face in it."""
    folder = tmp_path_factory.mktemp("noface")
    return _frames_as_images(clips.franck, folder, [0], crop=(slice(0, 100), slice(0, 90)))[0]


def test_missing_path_is_named_and_fails(tmp_path: Path) -> None:
    result = run_cli("extract", tmp_path / "nope.mp4", "-o", tmp_path / "set")
    assert result.returncode == 1
    assert f"{tmp_path / 'nope.mp4'}: no such file or directory" in result.stderr


def test_file_that_is_not_media_is_named_and_fails(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(os.urandom(4096))
    result = run_cli("extract", text, fake, "-o", tmp_path / "set")
    assert result.returncode == 1
    assert f"{text}: not an image or video" in result.stderr
    assert f"{fake}: not a readable video" in result.stderr


@pytest.mark.slow  # over 5 s: keeps make check under two minutes
def test_truncated_video_keeps_what_was_read(clips: DemoClips, tmp_path: Path) -> None:
    half = tmp_path / "half.mp4"
    data = clips.cap13.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    result = run_cli("extract", half, "-o", tmp_path / "set", "--every", "10")
    assert result.returncode == 0, result.stderr
    assert f"{half}: decoding stopped after" in result.stderr
    with FaceSet(tmp_path / "set") as store:
        kept = store.counts()[0]
    assert 20 <= kept.frames < 77 and kept.faces >= kept.frames * 0.95


def test_video_whose_index_was_cut_off_is_unreadable(clips: DemoClips, tmp_path: Path) -> None:
    half = tmp_path / "franck_half.mp4"  # franck.mp4 keeps its index (moov) at the end
    data = clips.franck.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    result = run_cli("extract", half, "-o", tmp_path / "set")
    assert result.returncode == 1
    assert f"{half}: not a readable video" in result.stderr


@pytest.mark.slow  # over 5 s: keeps make check under two minutes
def test_image_without_a_face(no_face_image: Path, clips: DemoClips, tmp_path: Path) -> None:
    alone = run_cli("extract", no_face_image, "-o", tmp_path / "alone")
    assert alone.returncode == 1
    assert f"{no_face_image}: no face found" in alone.stderr
    face_image = _frames_as_images(clips.franck, tmp_path / "with_face", [40])[0]
    mixed = run_cli("extract", no_face_image, face_image, "-o", tmp_path / "mixed")
    assert mixed.returncode == 0, mixed.stderr
    assert f"{no_face_image}: no face found" in mixed.stderr
    assert "1 faces from 2 frames" in mixed.stdout


def test_unwritable_output(clips: DemoClips, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    result = run_cli("extract", clips.cap13, "-o", blocker / "set", "--every", "50")
    assert result.returncode == 1
    assert f"{blocker / 'set'}: cannot write a face set here" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_folder_of_images(clips: DemoClips, tmp_path: Path) -> None:
    folder = tmp_path / "stills"
    images = _frames_as_images(clips.cap12, folder, [0, 100, 200, 300])
    (folder / "readme.txt").write_text("side files in a folder are ignored")
    report = extract([folder], tmp_path / "set", ExtractOptions(size=128))
    assert report.exit_code == 0 and not report.problems
    assert [r.path for r in report.results] == images
    with FaceSet(tmp_path / "set") as store:
        faces = store.faces()
        assert len(faces) == 4 and {r.crop_size for r in faces} == {128}
        assert store.load_crop(faces[0]).shape == (128, 128, 3)


def test_min_face_and_max_faces(clips: DemoClips, tmp_path: Path) -> None:
    too_small = extract([clips.cap13], tmp_path / "small", ExtractOptions(every=100, min_face=400))
    assert too_small.exit_code == 1 and "no face found" in too_small.problems[0]
    with FaceSet(tmp_path / "small") as store:
        assert store.counts()[0].frames == 8 and store.counts()[0].faces == 0


@pytest.mark.slow
def test_rerun_skips_done_frames_and_deleted_crops_stay_gone(clips: DemoClips, tmp_path: Path) -> None:
    first = extract([clips.cap13], tmp_path / "set", ExtractOptions(every=25))
    assert first.results[0].faces == 31
    with FaceSet(tmp_path / "set") as store:
        victim = store.faces()[3]
    (tmp_path / "set" / "faces" / victim.filename).unlink()
    second = extract([clips.cap13], tmp_path / "set", ExtractOptions(every=25))
    assert second.results[0].frames == 0 and second.results[0].already_done == 31
    with FaceSet(tmp_path / "set") as store:
        assert len(store.faces()) == 30
        assert victim.frame_index not in {r.frame_index for r in store.faces()}
    finer = extract([clips.cap13], tmp_path / "set", ExtractOptions(every=5))
    assert finer.results[0].frames == len(range(0, 765, 5)) - 31


@pytest.mark.slow
def test_killed_run_resumes_without_loss(clips: DemoClips, tmp_path: Path) -> None:
    target = tmp_path / "set"
    process = subprocess.Popen(
        [sys.executable, "-m", "facetwin", "extract", str(clips.franck), "-o", str(target), "--every", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    committed = 0
    while committed < 40 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(target / "faceset.db") as db:
                committed = db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
        except sqlite3.Error:
            committed = 0
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert committed >= 40, "the run never got going"
    with sqlite3.connect(target / "faceset.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    resumed = extract([clips.franck], target, ExtractOptions(every=4))
    result = resumed.results[0]
    assert result.already_done >= 40 and result.frames > 0
    assert result.already_done + result.frames == 1200
    with FaceSet(target) as store:
        faces = store.faces()
        counts = store.counts()[0]
    assert counts.frames == 1200 and len(faces) == counts.faces >= 1188
    assert len({(r.frame_index, r.face_index) for r in faces}) == len(faces)
    assert all((target / "faces" / r.filename).is_file() for r in faces)


def test_faceset_info_prints_counts_and_writes_a_sheet(franck_set, tmp_path: Path) -> None:
    folder, _ = franck_set
    sheet = tmp_path / "sheet.png"
    result = run_cli("faceset", "info", folder, "--sheet", sheet)
    assert result.returncode == 0, result.stderr
    assert "franck.mp4" in result.stdout and "480" in result.stdout
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 8 * 96 and image.shape[0] == 8 * (96 + 14)


def test_info_on_a_folder_that_is_not_a_face_set(tmp_path: Path) -> None:
    result = run_cli("faceset", "info", tmp_path)
    assert result.returncode == 1 and "not a face set" in result.stderr


def test_only_one_opencv_wheel_is_installed() -> None:
    names = {d.metadata["Name"].lower() for d in metadata.distributions()}
    opencv = sorted(n for n in names if n.startswith("opencv"))
    assert opencv == ["opencv-python-headless"], opencv
