"""A studio project: one folder with the same things the command line makes, and the only place the studio
reads or writes.

Layout::

    PROJECT/
      media/               inputs: uploaded, or copied in by hand (any media file in the project can be added)
      facesets/<name>/     face sets (facetwin extract -o facesets/<name>)
      models/<name>/       model folders (facetwin train ... -m models/<name>)
      outputs/             converted media (facetwin convert ... -o outputs/<file>)
      reports/<name>/      facetwin evaluate -o reports/<name>
      .studio/             the studio's own: studio.db (jobs, media checks, undo stack), logs/, thumbs/

Every path that comes from a request goes through ``Project.resolve``: it must be relative, free of
``..`` and NUL, and resolve (symlinks followed) to a place inside the project folder; anything else
raises ``PathRefused``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facetwin.errors import FacetwinError
from facetwin.media import kind_of

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PathRefused(FacetwinError):
    """A path from a request that is absolute, climbs out with ``..``, or resolves outside the project."""


def check_name(name: str, what: str = "name") -> str:
    """A folder or file name the studio makes: letters, digits, ``_ . -``, at most 64, not starting with a dot.
    Raises FacetwinError naming the rule."""
    if not NAME.match(name) or name in (".", ".."):
        raise FacetwinError(f"{what} {name!r}: use letters, digits, '_', '.', '-' (at most 64, not starting with a dot)")
    return name


@dataclass(frozen=True)
class Project:
    """The project folder at ``root`` (created with its sub-folders by ``open``)."""

    root: Path

    @classmethod
    def open(cls, root: str | Path) -> Project:
        """Make (if needed) and open a project folder; raises FacetwinError when it cannot be written."""
        folder = Path(root).expanduser().resolve()
        try:
            for sub in ("media", "facesets", "models", "outputs", "reports", ".studio/logs", ".studio/thumbs"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FacetwinError(f"{folder}: cannot make a studio project here ({exc.strerror or exc})") from exc
        return cls(folder)

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def facesets_dir(self) -> Path:
        return self.root / "facesets"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def studio_dir(self) -> Path:
        return self.root / ".studio"

    @property
    def database(self) -> Path:
        return self.studio_dir / "studio.db"

    def resolve(self, relative: str) -> Path:
        """The absolute path of ``relative`` (a POSIX path from a request) inside the project.

        Raises PathRefused for an empty, absolute or NUL-holding path, any ``..`` part, or a path that
        resolves (through symlinks) outside the project folder. The path need not exist."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise PathRefused(f"{relative!r}: not a project path")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or relative.startswith("~"):
            raise PathRefused(f"{relative!r}: absolute paths are refused; give a path inside the project")
        if ".." in pure.parts:
            raise PathRefused(f"{relative!r}: '..' is refused")
        target = (self.root / pure).resolve()
        if target != self.root and not target.is_relative_to(self.root):
            raise PathRefused(f"{relative!r}: leads outside the project")
        return target

    def relative(self, path: Path) -> str:
        """``path`` (inside the project) as the POSIX path the pages use."""
        return path.resolve().relative_to(self.root).as_posix()

    def faceset(self, name: str) -> Path:
        return self.facesets_dir / check_name(name, "face set")

    def model(self, name: str) -> Path:
        return self.models_dir / check_name(name, "model")

    def facesets(self) -> list[str]:
        return sorted(p.name for p in self.facesets_dir.iterdir()
                      if not p.is_symlink() and NAME.match(p.name) and (p / "faceset.db").is_file())  # fmt: skip

    def models(self) -> list[str]:
        return sorted(p.name for p in self.models_dir.iterdir()
                      if not p.is_symlink() and NAME.match(p.name) and (p / "config.json").is_file())  # fmt: skip

    def media_files(self) -> list[Path]:
        """Media anywhere in the project but the studio's, face sets', models' and outputs' folders."""
        skip = {self.studio_dir, self.facesets_dir, self.models_dir, self.outputs_dir, self.reports_dir}
        found: list[Path] = []
        stack = [self.root]
        while stack:
            folder = stack.pop()
            for entry in sorted(folder.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():  # a link may lead out of the project: never offered
                    continue
                if entry.is_dir():
                    if entry not in skip:
                        stack.append(entry)
                elif kind_of(entry) is not None:
                    found.append(entry)
        return sorted(found)

    def outputs(self) -> list[Path]:
        return sorted((p for p in self.outputs_dir.iterdir() if p.is_file() and not p.is_symlink()
                       and not p.name.startswith(".") and kind_of(p) is not None),
                      key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip

    def reports(self) -> list[str]:
        return sorted(p.name for p in self.reports_dir.iterdir() if (p / "report.html").is_file())
