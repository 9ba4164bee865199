"""Adding media to a project: an upload (written under a hidden name, size-limited) or a file already in
the project folder; either way it passes the content gate (``facetwin.safety.gate.ContentGate``, the
command line's) before any page offers it. An upload the gate refuses is deleted; a refused file that
was already in the project is listed as refused and offered to no job.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from facetwin.errors import FacetwinError
from facetwin.media import MediaError, MediaSource, collect_sources, kind_of
from facetwin.safety.gate import ContentGate, ContentRefused
from facetwin.studio.project import Project
from facetwin.studio.store import MediaCheck, Store

PASSED, REFUSED, UNREADABLE = "passed", "refused", "unreadable"
MAX_UPLOAD_BYTES = 2 << 30  # 2 GiB a file


class TooLarge(FacetwinError):
    """An upload over the size limit (nothing of it is kept)."""


def safe_upload_name(filename: str) -> str:
    """The name an uploaded file is stored under: its base name with anything but letters, digits and
    ``_ . -`` replaced, a media suffix required. Raises FacetwinError for a file that is not media."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(filename.replace("\\", "/")).name).lstrip(".") or "upload"
    if kind_of(Path(base)) is None:
        raise FacetwinError(f"{filename!r}: not an image or video (by its suffix)")
    return base[-96:]


class Intake:
    """Gate checks for a project's media, recorded in studio.db by path, size and modification time."""

    def __init__(self, project: Project, store: Store, gate: ContentGate) -> None:
        self.project, self.store, self.gate = project, store, gate
        self._lock = threading.Lock()  # one gate check at a time: the detector is shared

    def check(self, path: Path) -> MediaCheck:
        """Gate-check a file inside the project (cached while it is unchanged)."""
        relative = self.project.relative(path)
        stat = path.stat()
        known = self.store.media_check(relative, stat.st_size, stat.st_mtime)
        if known is not None:
            return known
        collected = collect_sources([path])
        if not collected.sources:
            verdict, message = UNREADABLE, collected.errors[0] if collected.errors else f"{relative}: not media"
        else:
            with self._lock:
                try:
                    decision = self.gate.check(collected.sources[0])
                    verdict = PASSED
                    message = f"passed the content gate ({decision.checked_frames} frames checked)"
                except ContentRefused as exc:
                    verdict, message = REFUSED, str(exc)
                except (MediaError, FacetwinError) as exc:
                    verdict, message = UNREADABLE, str(exc)
        self.store.record_media(relative, stat.st_size, stat.st_mtime, verdict, message)
        return MediaCheck(relative, verdict, message)

    def passed(self, relative: str) -> Path:
        """The path of a project media file that passed the gate; raises FacetwinError otherwise."""
        path = self.project.resolve(relative)
        if not path.is_file():
            raise FacetwinError(f"{relative}: no such file in the project")
        check = self.check(path)
        if check.verdict != PASSED:
            raise FacetwinError(check.message)
        return path

    def adopt(self, partial: Path, filename: str) -> MediaCheck:
        """Gate-check a received upload under its media suffix; keep it in media/ when it passes, delete it
        otherwise. Returns the check (its path is the kept file's, or the name it would have had)."""
        name = safe_upload_name(filename)
        staged = partial.with_name(f".{partial.stem}{Path(name).suffix.lower()}")
        os.replace(partial, staged)
        try:
            source = MediaSource(staged, kind_of(staged) or "image")
            with self._lock:
                decision = self.gate.check(source)
        except ContentRefused as exc:
            staged.unlink(missing_ok=True)
            return MediaCheck(f"media/{name}", REFUSED, str(exc).replace(str(staged), name))
        except (MediaError, FacetwinError) as exc:
            staged.unlink(missing_ok=True)
            return MediaCheck(f"media/{name}", UNREADABLE, str(exc).replace(str(staged), name))
        target = self._free_name(name)
        os.replace(staged, target)
        stat = target.stat()
        relative = self.project.relative(target)
        message = f"passed the content gate ({decision.checked_frames} frames checked)"
        self.store.record_media(relative, stat.st_size, stat.st_mtime, PASSED, message)
        return MediaCheck(relative, PASSED, message)

    def _free_name(self, name: str) -> Path:
        target = self.project.media_dir / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():
            n += 1
            target = target.with_name(f"{stem}_{n}{suffix}")
        return target

    def listing(self) -> list[tuple[str, MediaCheck | None]]:
        """Every media file of the project with its gate check (None: not checked yet)."""
        checks = self.store.media_checks()
        return [(rel, checks.get(rel)) for rel in (self.project.relative(p) for p in self.project.media_files())]
