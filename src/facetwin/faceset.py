"""The face-set store: a folder with ``faceset.db`` (SQLite) and ``faces/`` (aligned PNG crops).

SQLite gives what a pickled alignments file cannot: atomic commits (a run killed with SIGKILL leaves
the last committed frame intact), queries by source, and safe growth. Each processed frame is one
transaction: its crops are written (atomically, by rename) before the rows that point to them are
committed, so a row never names a missing file. A frame is remembered as done even when it had no
face, which is what makes a re-run skip it. Deleting a crop PNG is how users curate a set: the row
goes the next time the set is opened.

Format versions (the ``meta`` table's ``format_version``): 1 had no ``meta`` table (before 2026-11-30)
and is migrated in place, in one transaction, on first open, taking the current mean-face template as
the one its faces were aligned to (it was the only one). 2 records ``mean_face_sha256``: faces aligned
to another template cannot be added to, or trained with, faces of this one.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facetwin.arrays import Affine, Landmarks, RGBImage
from facetwin.errors import FacetwinError
from facetwin.faces.align import mean_face_sha256
from facetwin.media import write_image

if TYPE_CHECKING:  # only a type here: importing the detector would load MediaPipe (~2.5 s, ~200 MB)
    from facetwin.faces.detect import Detection

FACESET_FORMAT = 2
N_LANDMARKS = 478

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame_index INTEGER NOT NULL,
    seconds REAL NOT NULL,
    face_count INTEGER NOT NULL,
    PRIMARY KEY (source_id, frame_index)
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame_index INTEGER NOT NULL,
    face_index INTEGER NOT NULL,
    seconds REAL NOT NULL,
    box_x REAL NOT NULL, box_y REAL NOT NULL, box_w REAL NOT NULL, box_h REAL NOT NULL,
    score REAL NOT NULL,
    landmarks BLOB NOT NULL,
    matrix BLOB NOT NULL,
    crop_size INTEGER NOT NULL,
    sharpness REAL NOT NULL,
    filename TEXT NOT NULL UNIQUE,
    UNIQUE (source_id, frame_index, face_index)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class FaceRecord:
    """One aligned face as stored: where it came from, where it sits, and its crop's file name."""

    id: int
    source: str  # the path it was extracted from (the file may have moved since)
    source_fingerprint: str  # identifies the source file wherever it is (see ``fingerprint``)
    frame_index: int
    face_index: int
    seconds: float
    box: tuple[float, float, float, float]
    score: float
    landmarks: Landmarks = field(repr=False)  # 478 x 3, frame pixels
    frame_to_crop: Affine = field(repr=False)  # 2 x 3
    crop_size: int
    sharpness: float
    filename: str


@dataclass(frozen=True)
class FaceEntry:
    """A face's identity without its geometry: cheap to list for hundreds of thousands of faces."""

    id: int
    filename: str
    source_fingerprint: str
    seconds: float


@dataclass(frozen=True)
class NewFace:
    """A face ready to be stored: its detection, its mesh, its alignment and crop."""

    detection: Detection
    landmarks: Landmarks
    frame_to_crop: Affine
    crop: RGBImage
    sharpness: float


@dataclass(frozen=True)
class SourceCount:
    path: str
    frames: int
    frames_with_face: int
    faces: int


def fingerprint(path: Path) -> str:
    """Identify a media file by size and its first and last MiB, so a moved file is still recognised."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


class FaceSet:
    """Open (and with ``create``, make) a face set folder."""

    def __init__(self, root: str | os.PathLike[str], create: bool = False) -> None:
        self.root = Path(root)
        self.faces_dir = self.root / "faces"
        db_path = self.root / "faceset.db"
        if not create and not db_path.is_file():
            raise FacetwinError(f"{self.root}: not a face set (no faceset.db); make one with facetwin extract")
        try:
            if create:
                self.faces_dir.mkdir(parents=True, exist_ok=True)
                probe = self.root / ".write-test"
                probe.write_bytes(b"")
                probe.unlink()
            self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" in tables:
                self._refuse_newer(dict(self._db.execute("SELECT key, value FROM meta").fetchall()))
            self._db.executescript(SCHEMA)
            legacy = "faces" in tables
            with self._transaction():
                self.meta = self._read_or_migrate_meta(legacy)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise FacetwinError(f"{self.root}: cannot write a face set here ({reason})") from exc
        self.pruned = self._prune_missing_crops()

    def _refuse_newer(self, meta: dict[str, str]) -> None:
        version = int(meta.get("format_version", FACESET_FORMAT))
        if version > FACESET_FORMAT:
            self._db.close()
            raise FacetwinError(f"{self.root}: face set format {version} is newer than this facetwin reads"
                                f" ({FACESET_FORMAT}); upgrade facetwin")

    def _read_or_migrate_meta(self, legacy: bool) -> dict[str, str]:
        """The meta table as a dict; a new set, or a format-1 set (no meta rows), gets today's."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            meta = {"format_version": str(FACESET_FORMAT), "mean_face_sha256": mean_face_sha256()}
            if legacy:
                meta["migrated_from"] = "1"
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        return meta

    @property
    def aligned_to_current_template(self) -> bool:
        return self.meta.get("mean_face_sha256") == mean_face_sha256()

    def require_current_template(self) -> None:
        """Raise FacetwinError when this set's faces were aligned to another mean-face template."""
        if not self.aligned_to_current_template:
            raise FacetwinError(f"{self.root}: its faces were aligned to another mean-face template"
                                f" ({self.meta.get('mean_face_sha256', '?')[:12]}, this facetwin has"
                                f" {mean_face_sha256()[:12]}); extract them again into a new face set")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FaceSet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _prune_missing_crops(self) -> int:
        """Drop rows whose crop the user deleted; their frames stay done so a re-run won't re-add them."""
        rows = self._db.execute("SELECT id, filename FROM faces").fetchall()
        gone = [(face_id,) for face_id, name in rows if not (self.faces_dir / name).is_file()]
        if gone:
            with self._transaction():
                self._db.executemany("DELETE FROM faces WHERE id = ?", gone)
        return len(gone)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def source_id(self, path: Path, kind: str) -> int:
        key = fingerprint(path)
        row = self._db.execute("SELECT id FROM sources WHERE fingerprint = ?", (key,)).fetchone()
        if row:
            self._db.execute("UPDATE sources SET path = ? WHERE id = ?", (str(path), row[0]))
            return int(row[0])
        cursor = self._db.execute(
            "INSERT INTO sources (fingerprint, path, kind) VALUES (?, ?, ?)", (key, str(path), kind)
        )
        return int(cursor.lastrowid or 0)

    def done_frames(self, source_id: int) -> frozenset[int]:
        rows = self._db.execute("SELECT frame_index FROM frames WHERE source_id = ?", (source_id,))
        return frozenset(index for (index,) in rows)

    def add_frame(self, source_id: int, frame_index: int, seconds: float, faces: Sequence[NewFace]) -> None:
        """Store one processed frame and its faces, all or nothing."""
        names = [f"{source_id:04d}_{frame_index:07d}_{i}.png" for i in range(len(faces))]
        try:
            for name, face in zip(names, faces, strict=True):
                write_image(self.faces_dir / name, face.crop, (cv2.IMWRITE_PNG_COMPRESSION, 1))
            with self._transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO frames VALUES (?, ?, ?, ?)", (source_id, frame_index, seconds, len(faces))
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO faces (source_id, frame_index, face_index, seconds, box_x, box_y, box_w,"
                    " box_h, score, landmarks, matrix, crop_size, sharpness, filename)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            source_id, frame_index, i, seconds, *face.detection.box, face.detection.score,
                            face.landmarks.astype(np.float32).tobytes(), face.frame_to_crop.astype(np.float64).tobytes(),
                            face.crop.shape[0], face.sharpness, name,
                        )
                        for i, (name, face) in enumerate(zip(names, faces, strict=True))
                    ],
                )
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise FacetwinError(f"{self.root}: cannot store faces ({reason})") from exc

    def faces(self) -> list[FaceRecord]:
        return list(self.iter_faces())

    def entries(self) -> list[FaceEntry]:
        """Every face's id, crop file name, source fingerprint and time, in set order (by source, frame, face)."""
        rows = self._db.execute(
            "SELECT f.id, f.filename, s.fingerprint, f.seconds FROM faces f JOIN sources s ON s.id = f.source_id"
            " ORDER BY f.source_id, f.frame_index, f.face_index"
        )
        return [FaceEntry(*row) for row in rows]

    def records_for(self, filenames: Sequence[str]) -> list[FaceRecord]:
        """The full records of the faces with these crop file names, in the order given (missing ones left out)."""
        found: dict[str, FaceRecord] = {}
        for start in range(0, len(filenames), 500):
            chunk = list(filenames[start : start + 500])
            where = f"WHERE f.filename IN ({', '.join('?' * len(chunk))})"
            found.update((r.filename, r) for r in self._records(where, chunk))
        return [found[name] for name in filenames if name in found]

    def iter_faces(self) -> Iterator[FaceRecord]:
        return self._records("", [])

    def _records(self, where: str, parameters: Sequence[object]) -> Iterator[FaceRecord]:
        rows = self._db.execute(
            "SELECT f.id, s.path, s.fingerprint, f.frame_index, f.face_index, f.seconds, f.box_x, f.box_y, f.box_w, f.box_h,"
            " f.score, f.landmarks, f.matrix, f.crop_size, f.sharpness, f.filename"
            f" FROM faces f JOIN sources s ON s.id = f.source_id {where} ORDER BY f.source_id, f.frame_index, f.face_index",
            parameters,
        )
        for row in rows:
            yield FaceRecord(
                id=row[0], source=row[1], source_fingerprint=row[2], frame_index=row[3], face_index=row[4],
                seconds=row[5], box=(row[6], row[7], row[8], row[9]), score=row[10],
                landmarks=np.frombuffer(row[11], dtype=np.float32).reshape(N_LANDMARKS, 3),
                frame_to_crop=np.frombuffer(row[12], dtype=np.float64).reshape(2, 3),
                crop_size=row[13], sharpness=row[14], filename=row[15],
            )  # fmt: skip

    def load_crop(self, record: FaceRecord) -> RGBImage:
        path = self.faces_dir / record.filename
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FacetwinError(f"{path}: missing or unreadable crop")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def counts(self) -> list[SourceCount]:
        rows = self._db.execute(
            "SELECT s.path, COUNT(fr.frame_index), SUM(fr.face_count > 0),"
            " (SELECT COUNT(*) FROM faces f WHERE f.source_id = s.id)"
            " FROM sources s LEFT JOIN frames fr ON fr.source_id = s.id GROUP BY s.id ORDER BY s.id"
        )
        return [SourceCount(path, frames, int(with_face or 0), faces) for path, frames, with_face, faces in rows]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
