"""Shared fixtures: the real demo clips, and face sets extracted from them once per test session.

Two tiers. ``make check`` runs the fast one (``pytest -m "not slow"``): tests on short cuts of the demo
clips and the faces in them, no trained model. A test is *slow* when it asks for a fixture that trains
or extracts whole clips (``SLOW_FIXTURES``, marked automatically below) or is marked ``slow`` itself.
``make test`` runs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facetwin.demo_data import DemoClips, ensure_demo_clips
from facetwin.extract import ExtractReport, extract
from facetwin.media import MediaSource, read_frames
from facetwin.options import ExtractOptions, RunOptions, TrainConfig
from facetwin.train.trainer import train

SLOW_FIXTURES = frozenset({"franck_set", "cap12_set", "model_dir", "barely_trained", "config", "converted"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def cut_clip(source: Path, target: Path, seconds: float, start: float = 0.0) -> Path:
    """Re-encode ``seconds`` of a clip from ``start`` (H.264, same size and frame rate) into ``target``."""
    with av.open(str(source)) as container, av.open(str(target), "w") as out:
        stream = container.streams.video[0]
        rate = stream.average_rate or 25
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = stream.width, stream.height, "yuv420p"
        written = 0
        for frame in container.decode(stream):
            if frame.time is None or frame.time < start:
                continue
            if frame.time >= start + seconds:
                break
            copy = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            copy.pts, copy.time_base = written, Fraction(1, int(round(float(rate))))
            for packet in video.encode(copy):
                out.mux(packet)
            written += 1
        for packet in video.encode(None):
            out.mux(packet)
    return target


@pytest.fixture(scope="session")
def short_clips(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six seconds of each person: franck (A) and cap12 (B), and a second cut of B (cap13) for adding sources."""
    folder = tmp_path_factory.mktemp("short")
    return {"a": cut_clip(clips.franck, folder / "franck_6s.mp4", 6.0), "b": cut_clip(clips.cap12, folder / "cap12_6s.mp4", 6.0),
            "b2": cut_clip(clips.cap13, folder / "cap13_3s.mp4", 3.0)}


@pytest.fixture(scope="session")
def cap13_rgb(clips: DemoClips) -> list[np.ndarray]:
    """Three seconds (75 frames) of cap13 as RGB: the material the media tests build their clips from."""
    frames = []
    with av.open(str(clips.cap13)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 75:
                break
    return frames


@pytest.fixture(scope="session")
def small_sets(short_clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Face sets of the six-second cuts, every 2nd frame (~75 faces each): real faces in seconds."""
    folder = tmp_path_factory.mktemp("small_sets")
    sets = {}
    for side in ("a", "b"):
        report = extract([short_clips[side]], folder / side, ExtractOptions(every=2, max_faces=1))
        assert report.exit_code == 0, report.problems
        sets[side] = folder / side
    return sets


@pytest.fixture(scope="session", autouse=True)
def signing_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep the signing identity that convert makes on first use out of the user's own config folder."""
    folder = tmp_path_factory.mktemp("config")
    os.environ["FACETWIN_CONFIG_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def clips() -> DemoClips:
    return ensure_demo_clips()


def _extract_once(tmp_path_factory: pytest.TempPathFactory, name: str, video: Path, every: int) -> tuple[Path, ExtractReport]:
    """The clip extracted every ``every``-th frame, or, where FACETWIN_TEST_FACESETS names prebuilt sets
    (``A:B``, as bench/gpu.sh passes on a GPU machine without MediaPipe), a copy of that set."""
    folder = tmp_path_factory.mktemp(name) / "faceset"
    prebuilt = os.environ.get("FACETWIN_TEST_FACESETS")
    if prebuilt:
        shutil.copytree(prebuilt.split(":")[0 if name == "franck" else 1], folder)
        return folder, ExtractReport()
    return folder, extract([video], folder, ExtractOptions(every=every))


@pytest.fixture(scope="session")
def franck_set(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractReport]:
    return _extract_once(tmp_path_factory, "franck", clips.franck, every=10)


@pytest.fixture(scope="session")
def cap12_set(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractReport]:
    return _extract_once(tmp_path_factory, "cap12", clips.cap12, every=10)


@pytest.fixture(scope="session")
def model_dir(franck_set, cap12_set, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "model"
    config = TrainConfig(str(franck_set[0]), str(cap12_set[0]), model="original", batch_size=8, seed=1)
    train(folder, config, RunOptions(iterations=30, save_every=30, preview_every=30))
    return folder


@pytest.fixture(scope="session")
def clip_with_tone(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 100 frames of cap13 with a generated 440 Hz tone muxed in as AAC."""
    path = tmp_path_factory.mktemp("tone") / "cap13_tone.mp4"
    with av.open(str(clips.cap13)) as source, av.open(str(path), "w") as target:
        video_in = source.streams.video[0]
        video_out = target.add_stream("libx264", rate=25)
        video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "yuv420p"
        audio_out = target.add_stream("aac", rate=48000, layout="mono")
        for i, frame in enumerate(source.decode(video_in)):
            if i == 100:
                break
            frame = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 25)
            for packet in video_out.encode(frame):
                target.mux(packet)
        for packet in video_out.encode(None):
            target.mux(packet)
        t = np.arange(48000 * 4) / 48000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            for packet in audio_out.encode(chunk):
                target.mux(packet)
        for packet in audio_out.encode(None):
            target.mux(packet)
    return path


def save_frame(clip: Path, index: int, path: Path) -> np.ndarray:
    """Write frame `index` of a clip to an image file (format from the suffix); return its RGB pixels."""
    frame = next(f for f in read_frames(MediaSource(clip, "video")) if f.index == index)
    cv2.imwrite(str(path), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    return frame.rgb


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``facetwin`` command in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "facetwin", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )
