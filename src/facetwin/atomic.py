"""Writing files so that no reader ever sees half of one: a temporary name, fsync, rename, fsync the folder.

A run killed at any moment (Ctrl-C, ``kill -9``, a full disk) leaves either the old file or the complete
new one. Everything facetwin persists that is not an image or video (config, checkpoint state, reports)
goes through here; images go through ``facetwin.media.write_image``, which renames the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path (a folder's fsync makes a rename inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and durably. Raises OSError (disk full, no permission)."""
    partial = path.with_name(f".{path.name}.tmp")
    try:
        with open(partial, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    fsync_path(path.parent)
    return path


def write_json_atomically(path: Path, data: Any) -> Path:
    """``data`` as indented JSON at ``path``, atomically (see ``write_text_atomically``)."""
    return write_text_atomically(path, json.dumps(data, indent=2) + "\n")
