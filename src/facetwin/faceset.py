"""The face-set store: a folder with ``faceset.db`` (SQLite) and ``faces/`` (aligned PNG crops).

SQLite gives what a pickled alignments file cannot: atomic commits (a run killed with SIGKILL leaves
the last committed frame intact), queries by source, and safe growth. Each processed frame is one
transaction: its crops are written (atomically, by rename) before the rows that point to them are
committed, so a row never names a missing file. A frame is remembered as done even when it had no
face, which is what makes a re-run skip it. Deleting a crop PNG is how users curate a set: the row
goes the next time the set is opened.

Deleting a crop drops a face for good. ``drop`` drops it so that it can come back: the crop moves to
``dropped/`` and the row is marked, until ``restore`` moves it back or ``purge`` deletes both. Every
reader (faces, entries, counts, the training cache) sees only the faces in the set. A drop or restore
is committed in the database first and the crop moved after; a run killed in between is finished on
the next open (the row says where the crop belongs).

Each face may carry an identity: dlib's 128-d embedding (``faces.identity``), ``identity_exact`` when
it was computed on this face rather than copied along its ``track`` (the faces of one person followed
from frame to frame of one source, ``faces.tracks``), and the person group ``facetwin faceset
identities`` last put it in.

Format versions (the ``meta`` table's ``format_version``): 1 had no ``meta`` table (before 2026-11-30)
and is migrated in place, in one transaction, on first open, taking the current mean-face template as
the one its faces were aligned to (it was the only one). 2 records ``mean_face_sha256``: faces aligned
to another template cannot be added to, or trained with, faces of this one. 3 (2026-12) adds the
identity, track and drop columns and the ``identity_groups`` table; a format-2 set gets them on first
open (in the same transaction), its faces without identities until something needs them
(``facetwin.identities.fill_identities`` back-fills them).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
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

FACESET_FORMAT = 3
IDENTITY_BYTES = 128 * 4  # float32
DROPPED = "dropped"  # the folder of dropped crops
N_LANDMARKS = 478
# Crops are PNG, zlib level 3, every row filtered "up": training's cache decodes each crop once, and
# libpng undoes "up" far faster than the Paeth filter OpenCV picks at level 1. Measured on the demo's
# 1,200 crops of 256 px (bench/train_data.py, ``crop_png``; one thread): level 1 as OpenCV picks, 2.32 ms
# to decode, 76.7 KiB, 5.9 ms to encode; level 3 "up", 1.45 ms, 75.3 KiB, 6.1 ms. Lossless either way.
CROP_PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP)

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
    identity BLOB, identity_exact INTEGER, track INTEGER, dropped TEXT, dropped_at REAL,
    UNIQUE (source_id, frame_index, face_index)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identity_groups (face_id INTEGER PRIMARY KEY, person INTEGER NOT NULL);
"""
# What listing a set reads (``entries``, the prune at open), as a covering index: the faces table's rows
# are wide (~6 KB of landmarks ahead of the file name), so without it each listed face walks the row's
# overflow pages. Measured at 50,000 faces (warm page cache): the entries query 0.33 -> 0.10 s, the
# prune's 0.27 -> 0.08 s; the index adds ~2 MB and is built once, in ~0.24 s, when an older set opens.
LISTING_INDEX = "CREATE INDEX IF NOT EXISTS faces_listing ON faces (source_id, frame_index, face_index, filename, seconds, dropped)"
FORMAT_3_COLUMNS = (("identity", "BLOB"), ("identity_exact", "INTEGER"), ("track", "INTEGER"), ("dropped", "TEXT"),
                    ("dropped_at", "REAL"))  # fmt: skip
ACTIVE = "f.dropped IS NULL"


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
    identity: np.ndarray | None = field(default=None, repr=False)  # 128 float32, or None before it is computed
    identity_exact: bool = False  # computed on this face (else copied from its track)
    track: int | None = None


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
    identity: np.ndarray | None = field(default=None, repr=False)  # 128 float32 (faces.identity)
    identity_exact: bool = False
    track: int | None = None


@dataclass(frozen=True)
class IdentityRow:
    """A face's identity figures: what grouping and back-filling need, without pixels or landmarks."""

    id: int
    filename: str
    source_id: int
    source_fingerprint: str
    frame_index: int
    seconds: float
    box: tuple[float, float, float, float]
    identity: np.ndarray | None = field(repr=False)
    identity_exact: bool
    track: int | None


@dataclass(frozen=True)
class DroppedFace:
    filename: str
    reason: str
    dropped_at: float


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


def _file_names(folder: Path) -> set[str]:
    """Names of the regular files in ``folder`` (empty when it does not exist), from one directory listing:
    at 100,000 faces, a stat per face took seconds of a training run's start-up."""
    try:
        with os.scandir(folder) as listing:
            return {entry.name for entry in listing if entry.is_file()}
    except FileNotFoundError:
        return set()


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
                self._migrate_to_3()
                self._db.execute(LISTING_INDEX)
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
        if not meta:  # a new set is made at today's format; a format-1 one becomes 2 here, then 3
            meta = {"format_version": str(2 if legacy else FACESET_FORMAT), "mean_face_sha256": mean_face_sha256()}
            if legacy:
                meta["migrated_from"] = "1"
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        return meta

    def _migrate_to_3(self) -> None:
        """Format 1 or 2 -> 3: the identity, track and drop columns (empty), in the open transaction."""
        if int(self.meta["format_version"]) >= 3:
            return
        have = {row[1] for row in self._db.execute("PRAGMA table_info(faces)")}
        for name, kind in FORMAT_3_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE faces ADD COLUMN {name} {kind}")
        self.meta = {**self.meta, "format_version": str(FACESET_FORMAT),
                     "migrated_from": self.meta.get("migrated_from", self.meta["format_version"])}
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(self.meta.items()))

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

    @property
    def dropped_dir(self) -> Path:
        return self.root / DROPPED

    def _prune_missing_crops(self) -> int:
        """Forget faces whose crop the user deleted (their frames stay done, so a re-run won't re-add them),
        and finish a drop or restore that a killed run left half done. Returns the faces forgotten."""
        rows = self._db.execute("SELECT id, filename, dropped IS NOT NULL FROM faces").fetchall()
        active, dropped_dir = self.faces_dir, self.dropped_dir
        files = {folder: _file_names(folder) for folder in (active, dropped_dir)}  # one listing, not a stat a face
        gone = []
        for face_id, name, dropped in rows:
            here, there = (dropped_dir, active) if dropped else (active, dropped_dir)
            if name in files[here]:
                continue
            if name in files[there]:
                here.mkdir(exist_ok=True)
                os.replace(there / name, here / name)
            else:
                gone.append((face_id,))
        if gone:
            with self._transaction():
                self._db.executemany("DELETE FROM faces WHERE id = ?", gone)
        return len(gone)

    # dropping, restoring, purging --------------------------------------------------------------------

    def drop(self, filenames: Sequence[str], reason: str) -> int:
        """Take the faces with these crop file names out of the set, recoverably: their crops move to
        ``dropped/`` (``restore`` brings them back, ``purge`` deletes them). Unknown or already dropped
        names are ignored; returns how many were dropped."""
        names = self._names_where(filenames, "dropped IS NULL")
        if names:
            self.dropped_dir.mkdir(exist_ok=True)
            with self._transaction():
                self._db.executemany("UPDATE faces SET dropped = ?, dropped_at = ? WHERE filename = ?",
                                     [(reason, time.time(), name) for name in names])  # fmt: skip
            for name in names:
                if (self.faces_dir / name).is_file():
                    os.replace(self.faces_dir / name, self.dropped_dir / name)
        return len(names)

    def restore(self, filenames: Sequence[str] | None = None) -> int:
        """Bring dropped faces back (all of them when ``filenames`` is None); returns how many came back."""
        if filenames is None:
            names = [name for (name,) in self._db.execute("SELECT filename FROM faces WHERE dropped IS NOT NULL")]
        else:
            names = self._names_where(filenames, "dropped IS NOT NULL")
        if names:
            with self._transaction():
                self._db.executemany("UPDATE faces SET dropped = NULL, dropped_at = NULL WHERE filename = ?",
                                     [(name,) for name in names])  # fmt: skip
            for name in names:
                if (self.dropped_dir / name).is_file():
                    os.replace(self.dropped_dir / name, self.faces_dir / name)
        return len(names)

    def purge(self) -> int:
        """Delete every dropped face for good (its row and its crop); returns how many."""
        names = [name for (name,) in self._db.execute("SELECT filename FROM faces WHERE dropped IS NOT NULL")]
        with self._transaction():
            self._db.execute("DELETE FROM faces WHERE dropped IS NOT NULL")
        for name in names:
            (self.dropped_dir / name).unlink(missing_ok=True)
        return len(names)

    def dropped(self) -> list[DroppedFace]:
        """The dropped faces, oldest drop first."""
        rows = self._db.execute("SELECT filename, dropped, dropped_at FROM faces WHERE dropped IS NOT NULL"
                                " ORDER BY dropped_at, id")  # fmt: skip
        return [DroppedFace(*row) for row in rows]

    def _names_where(self, filenames: Sequence[str], condition: str) -> list[str]:
        found: list[str] = []
        unique = list(dict.fromkeys(filenames))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._db.execute(f"SELECT filename FROM faces WHERE {condition} AND filename IN ({', '.join('?' * len(chunk))})", chunk)
            found += [name for (name,) in rows]
        return found

    # identities --------------------------------------------------------------------------------------

    def identity_rows(self) -> list[IdentityRow]:
        """Every face in the set with its identity, exactness, track and box, in set order."""
        rows = self._db.execute(
            "SELECT f.id, f.filename, f.source_id, s.fingerprint, f.frame_index, f.seconds, f.box_x, f.box_y, f.box_w,"
            " f.box_h, f.identity, f.identity_exact, f.track FROM faces f JOIN sources s ON s.id = f.source_id"
            f" WHERE {ACTIVE} ORDER BY f.source_id, f.frame_index, f.face_index"
        )
        return [IdentityRow(row[0], row[1], row[2], row[3], row[4], row[5], (row[6], row[7], row[8], row[9]),
                            _identity(row[10]), bool(row[11]), row[12]) for row in rows]  # fmt: skip

    def set_identities(self, values: Sequence[tuple[int, np.ndarray, bool, int]]) -> None:
        """Store (face id, 128-d embedding, exact, track) for each face, in one transaction."""
        with self._transaction():
            self._db.executemany("UPDATE faces SET identity = ?, identity_exact = ?, track = ? WHERE id = ?",
                                 [(_identity_bytes(e), int(x), t, i) for i, e, x, t in values])  # fmt: skip

    def next_track(self) -> int:
        """A track number no face of this set uses yet."""
        return int(self._db.execute("SELECT COALESCE(MAX(track), 0) + 1 FROM faces").fetchone()[0])

    def save_groups(self, groups: dict[int, int]) -> None:
        """Store the person group (1 = the largest) of each face id, replacing the previous grouping."""
        with self._transaction():
            self._db.execute("DELETE FROM identity_groups")
            self._db.executemany("INSERT INTO identity_groups VALUES (?, ?)", sorted(groups.items()))

    def groups(self) -> dict[int, int]:
        """Face id -> person group, as ``facetwin faceset identities`` last stored it (faces in the set only)."""
        rows = self._db.execute(f"SELECT g.face_id, g.person FROM identity_groups g JOIN faces f ON f.id = g.face_id WHERE {ACTIVE}")
        return dict(rows.fetchall())

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
                write_image(self.faces_dir / name, face.crop, CROP_PNG_PARAMS)
            with self._transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO frames VALUES (?, ?, ?, ?)", (source_id, frame_index, seconds, len(faces))
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO faces (source_id, frame_index, face_index, seconds, box_x, box_y, box_w,"
                    " box_h, score, landmarks, matrix, crop_size, sharpness, filename, identity, identity_exact, track)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            source_id, frame_index, i, seconds, *face.detection.box, face.detection.score,
                            face.landmarks.astype(np.float32).tobytes(), face.frame_to_crop.astype(np.float64).tobytes(),
                            face.crop.shape[0], face.sharpness, name,
                            None if face.identity is None else _identity_bytes(face.identity), int(face.identity_exact), face.track,
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
            f" WHERE {ACTIVE} ORDER BY f.source_id, f.frame_index, f.face_index"
        )
        return [FaceEntry(*row) for row in rows]

    def records_for(self, filenames: Sequence[str]) -> list[FaceRecord]:
        """The full records of the faces with these crop file names, in the order given (missing ones left out)."""
        found: dict[str, FaceRecord] = {}
        for start in range(0, len(filenames), 500):
            chunk = list(filenames[start : start + 500])
            where = f"WHERE {ACTIVE} AND f.filename IN ({', '.join('?' * len(chunk))})"
            found.update((r.filename, r) for r in self._records(where, chunk))
        return [found[name] for name in filenames if name in found]

    def iter_faces(self) -> Iterator[FaceRecord]:
        return self._records(f"WHERE {ACTIVE}", [])

    def _records(self, where: str, parameters: Sequence[object]) -> Iterator[FaceRecord]:
        rows = self._db.execute(
            "SELECT f.id, s.path, s.fingerprint, f.frame_index, f.face_index, f.seconds, f.box_x, f.box_y, f.box_w, f.box_h,"
            " f.score, f.landmarks, f.matrix, f.crop_size, f.sharpness, f.filename, f.identity, f.identity_exact, f.track"
            f" FROM faces f JOIN sources s ON s.id = f.source_id {where} ORDER BY f.source_id, f.frame_index, f.face_index",
            parameters,
        )
        for row in rows:
            yield FaceRecord(
                id=row[0], source=row[1], source_fingerprint=row[2], frame_index=row[3], face_index=row[4],
                seconds=row[5], box=(row[6], row[7], row[8], row[9]), score=row[10],
                landmarks=np.frombuffer(row[11], dtype=np.float32).reshape(N_LANDMARKS, 3),
                frame_to_crop=np.frombuffer(row[12], dtype=np.float64).reshape(2, 3),
                crop_size=row[13], sharpness=row[14], filename=row[15], identity=_identity(row[16]),
                identity_exact=bool(row[17]), track=row[18],
            )  # fmt: skip

    def load_crop(self, record: FaceRecord) -> RGBImage:
        path = self.faces_dir / record.filename
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FacetwinError(f"{path}: missing or unreadable crop")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def source_paths(self) -> dict[int, str]:
        """Source id -> the path it was last extracted from."""
        return dict(self._db.execute("SELECT id, path FROM sources").fetchall())

    def counts(self) -> list[SourceCount]:
        rows = self._db.execute(
            "SELECT s.path, COUNT(fr.frame_index), SUM(fr.face_count > 0),"
            f" (SELECT COUNT(*) FROM faces f WHERE f.source_id = s.id AND {ACTIVE})"
            " FROM sources s LEFT JOIN frames fr ON fr.source_id = s.id GROUP BY s.id ORDER BY s.id"
        )
        return [SourceCount(path, frames, int(with_face or 0), faces) for path, frames, with_face, faces in rows]


def _identity(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


def _identity_bytes(embedding: np.ndarray) -> bytes:
    data = np.asarray(embedding, dtype=np.float32).tobytes()
    if len(data) != IDENTITY_BYTES:
        raise ValueError(f"an identity is 128 float32 values, not {len(data) // 4}")
    return data


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
