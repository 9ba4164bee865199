"""Shared fixtures: the real demo clips, and face sets extracted from them once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facetwin.demo_data import DemoClips, ensure_demo_clips
from facetwin.extract import ExtractOptions, ExtractReport, extract


@pytest.fixture(scope="session")
def clips() -> DemoClips:
    return ensure_demo_clips()


def _extract_once(tmp_path_factory: pytest.TempPathFactory, name: str, video: Path, every: int) -> tuple[Path, ExtractReport]:
    folder = tmp_path_factory.mktemp(name) / "faceset"
    return folder, extract([video], folder, ExtractOptions(every=every))


@pytest.fixture(scope="session")
def franck_set(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractReport]:
    return _extract_once(tmp_path_factory, "franck", clips.franck, every=10)


@pytest.fixture(scope="session")
def cap12_set(clips: DemoClips, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractReport]:
    return _extract_once(tmp_path_factory, "cap12", clips.cap12, every=10)


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``facetwin`` command in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "facetwin", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )
