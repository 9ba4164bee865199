"""Curating a face set in the studio: the faces in pages, sorted; thumbnails; drop and undo.

Dropping a face is the face set's own recoverable drop (``FaceSet.drop``: the crop moves to the set's
``dropped/`` and its row is marked, exactly as ``facetwin faceset drop`` does); the studio keeps a stack of
its drops so that ``undo`` restores the last one (``FaceSet.restore``). The training cache notices both on
its next use.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetwin.errors import FacetwinError
from facetwin.faces.align import transform_points
from facetwin.faceset import FaceSet
from facetwin.scoring.metrics import head_pose
from facetwin.studio.project import Project, check_name
from facetwin.studio.store import Store

CROP_NAME = re.compile(r"^[0-9]{4,}_[0-9]{7,}_[0-9]+\.png$")  # faceset.FaceSet.add_frame's names
THUMB_PX = 96
PAGE_SIZE = 240
INLINE_IDENTITY = 64  # faces embedded within the request; more are embedded on a thread

# sort name -> (label, key of a FaceRow, descending)
SORTS: dict[str, tuple[str, str, bool]] = {
    "time": ("source and time", "order", False),
    "blur": ("blurriest first", "sharpness", False),
    "pose": ("most turned first", "abs_yaw", True),
    "size": ("smallest first", "size", False),
    "score": ("least sure detection first", "score", False),
    "identity": ("least like the rest first (identity)", "identity", True),
}


@dataclass(frozen=True)
class FaceRow:
    """What the grid shows and sorts by, for one face."""

    filename: str
    order: int  # position in set order (source, frame, face)
    source: str
    frame_index: int
    seconds: float
    sharpness: float  # variance of the Laplacian of the crop: low is blurry
    size: float  # face box side in frame pixels (geometric mean of width and height)
    score: float  # detection score in [0, 1]
    yaw: float  # head turn in degrees (solvePnP on the mesh in crop pixels); 0 faces the camera; NaN: not measured yet
    identity: float = math.nan  # dlib embedding distance to the set's median face (same person under 0.6); NaN: not measured

    @property
    def abs_yaw(self) -> float:
        return abs(self.yaw) if np.isfinite(self.yaw) else 0.0


@dataclass(frozen=True)
class Page:
    rows: list[FaceRow]
    number: int  # from 1
    pages: int
    total: int
    sort: str
    unmeasured: int = 0  # faces whose identity is still being measured (sort "identity" on a large set)


def _stamp(folder: Path) -> tuple[float, float, float]:
    db = folder / "faceset.db"
    wal = folder / "faceset.db-wal"
    return (db.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0, (folder / "faces").stat().st_mtime)


class FaceSets:
    """The face sets of a project as the grid sees them; rows are read once per change of the set."""

    def __init__(self, project: Project, store: Store) -> None:
        self.project, self.store = project, store
        self._cache: dict[str, tuple[tuple[float, float, float], list[FaceRow]]] = {}
        self._yaw: dict[str, dict[str, float]] = {}  # per set: crop file name -> yaw (never changes for a name)
        self._names: dict[str, set[str]] = {}  # per set: its crop file names, as last read
        self._embeddings: dict[str, dict[str, np.ndarray]] = {}  # per set: crop file name -> 128-d dlib embedding
        self._embedder: Any = None
        self._measuring: dict[str, threading.Thread] = {}
        self._identity_lock = threading.Lock()
        self._lock = threading.Lock()

    def rows(self, name: str) -> list[FaceRow]:
        """Every face of set ``name`` in set order. Raises FacetwinError for a missing set. A face's yaw is
        NaN until a pose sort has asked for it (``with_pose``): solvePnP for thousands of faces is seconds."""
        folder = self.project.faceset(name)
        if not (folder / "faceset.db").is_file():
            raise FacetwinError(f"no face set {name!r} in this project")
        with self._lock:
            stamp = _stamp(folder)
            cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            yaws = self._yaw.setdefault(name, {})
            with FaceSet(folder) as store:
                rows = [_row(i, r, yaws.get(r.filename, math.nan)) for i, r in enumerate(store.iter_faces())]
            self._cache[name] = (_stamp(folder), rows)
            self._names[name] = {r.filename for r in rows}
            return rows

    def with_pose(self, name: str) -> list[FaceRow]:
        """``rows`` with every face's yaw measured (once per face; kept for the server's life)."""
        rows = self.rows(name)
        missing = {r.filename for r in rows if math.isnan(r.yaw)}
        if not missing:
            return rows
        yaws = self._yaw.setdefault(name, {})
        with FaceSet(self.project.faceset(name)) as store:
            for record in store.iter_faces():
                if record.filename in missing:
                    crop_points = transform_points(record.landmarks, record.frame_to_crop)
                    yaws[record.filename] = float(head_pose(crop_points, record.crop_size)[0])
        return [replace(r, yaw=yaws.get(r.filename, math.nan)) for r in rows]

    def with_identity(self, name: str, wait: bool = True) -> tuple[list[FaceRow], int]:
        """``rows`` with each face's identity distance: dlib's embedding (facetwin.faces.identity, as evaluate
        uses) against the median embedding of the set; a face of someone else stands out above 0.6. Each
        face is embedded once for the server's life (0.1-0.3 s a face on 2 cores). Unless ``wait``, more than
        INLINE_IDENTITY faces to embed are embedded on a thread and the rows come back with those measured
        so far. Returns the rows and how many faces are still to be measured."""
        rows = self.with_pose(name)
        known = self._embeddings.setdefault(name, {})
        missing = [r.filename for r in rows if r.filename not in known]
        if missing and (wait or len(missing) <= INLINE_IDENTITY):
            self._embed(name, missing)
        elif missing:
            running = self._measuring.get(name)
            if running is None or not running.is_alive():
                self._measuring[name] = threading.Thread(target=self._embed, args=(name, missing), daemon=True,
                                                         name=f"studio-identity-{name}")  # fmt: skip
                self._measuring[name].start()
        present = [r for r in rows if r.filename in known]
        if not present:
            return rows, len(rows)
        centre = np.median(np.stack([known[r.filename] for r in present]), axis=0)
        measured = [replace(r, identity=float(np.linalg.norm(known[r.filename] - centre))) if r.filename in known else r
                    for r in rows]  # fmt: skip
        return measured, len(rows) - len(present)

    def _embed(self, name: str, filenames: list[str]) -> None:
        from facetwin.faces.identity import FaceEmbedder

        with self._identity_lock:
            if self._embedder is None:
                self._embedder = FaceEmbedder()
            known = self._embeddings.setdefault(name, {})
            with FaceSet(self.project.faceset(name)) as store:
                for record in store.records_for([f for f in filenames if f not in known]):
                    crop = store.load_crop(record)
                    points = transform_points(record.landmarks, record.frame_to_crop)
                    box = (*points.min(axis=0), *points.max(axis=0))
                    known[record.filename] = self._embedder.embed([crop], [tuple(float(v) for v in box)])[0]

    def page(self, name: str, sort: str = "time", number: int = 1, size: int = PAGE_SIZE) -> Page:
        """One page (``number`` from 1, clamped) of set ``name`` in the order ``sort`` (a key of SORTS)."""
        if sort not in SORTS:
            raise FacetwinError(f"sort is one of {', '.join(SORTS)}, not {sort!r}")
        waiting = 0
        if sort == "identity":
            rows, waiting = self.with_identity(name, wait=False)
        else:
            rows = self.with_pose(name) if sort == "pose" else self.rows(name)
        _, key, descending = SORTS[sort]
        ordered = sorted(rows, key=lambda r: getattr(r, key), reverse=descending) if sort != "time" else rows
        pages = max(1, -(-len(rows) // size))
        number = min(max(1, number), pages)
        return Page(ordered[(number - 1) * size : number * size], number, pages, len(rows), sort, waiting)

    def thumbnail(self, name: str, filename: str) -> Path:
        """A small JPEG of one face's crop (made once, kept in .studio/thumbs). Raises FacetwinError when
        ``filename`` is not a crop file name of the set (so no other file can be named)."""
        if not CROP_NAME.match(filename):
            raise FacetwinError(f"{filename!r} is not a face of {name!r}")
        target = self.project.studio_dir / "thumbs" / check_name(name, "face set") / (filename + ".jpg")
        if target.is_file():
            return target
        if filename not in self._names.get(name, set()) and filename not in {r.filename for r in self.rows(name)}:
            raise FacetwinError(f"{filename!r} is not a face of {name!r}")
        crop = cv2.imread(str(self.project.faceset(name) / "faces" / filename), cv2.IMREAD_COLOR)
        if crop is None:
            raise FacetwinError(f"{filename}: crop missing")
        small = cv2.resize(crop, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + f".{threading.get_ident()}.part")
        partial.write_bytes(data.tobytes())
        os.replace(partial, target)
        return target

    def drop(self, name: str, filenames: list[str]) -> int:
        """Drop these faces from set ``name`` (recoverably, into its ``dropped/``); returns how many."""
        known = {r.filename for r in self.rows(name)}
        chosen = sorted(set(filenames) & known)
        if not chosen:
            return 0
        with FaceSet(self.project.faceset(name)) as faceset:
            dropped = faceset.drop(chosen, "dropped in the studio")
        self.store.add_drop(name, [{"filename": f} for f in chosen])
        return dropped

    def undo(self, name: str) -> int:
        """Restore the faces of the last drop of set ``name``; returns how many (0: nothing to undo)."""
        last = self.store.last_drop(name)
        if last is None:
            return 0
        drop_id, rows = last
        with FaceSet(self.project.faceset(name)) as faceset:
            restored = faceset.restore([r["filename"] for r in rows])
        self.store.undo_drop(drop_id)
        return restored

    def can_undo(self, name: str) -> bool:
        return self.store.drops_left(name) > 0


def _row(order: int, record: Any, yaw: float) -> FaceRow:
    w, h = record.box[2], record.box[3]
    return FaceRow(record.filename, order, Path(record.source).name, record.frame_index, record.seconds,
                   float(record.sharpness), float(np.sqrt(max(w * h, 0.0))), float(record.score), yaw)  # fmt: skip
