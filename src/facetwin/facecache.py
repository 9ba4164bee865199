"""The training cache: a face set's crops decoded once at a working size, memory-mapped by every reader.

Why: training used to decode every PNG of both face sets at start-up into lists of arrays, and each
DataLoader worker (spawned) received its own pickled copy, so memory grew as faces x size^2 x (1 +
workers) and start-up decoded everything before the first step. Here each (face set, working size)
has one cache folder, ``FACESET/cache/w<size>/``:

- ``crops.u8``: the crops resized to ``size`` (INTER_AREA), uint8 RGB, one row of size*size*3 bytes each;
- ``points.f32``: each face's 478 landmarks in those pixels, float32 (x, y), one row each;
- ``index.db``: SQLite, which row holds which crop file, stamped with the file's size and mtime.

Readers map both files read-only (``numpy.memmap``): every worker process shares the same page-cache
pages, so memory does not grow with the number of workers, and a pickled pool is its path and row
numbers, not its pixels. The cache is brought up to date when opened: faces whose crop file is new or
changed (size or mtime) are decoded and appended, faces deleted from the set are dropped from the index,
and when dead rows outnumber live ones the files are rewritten compactly. Appends happen under an
exclusive lock (``fcntl.flock``), so the ranks of a DDP job, or two runs, build it once. A run killed
mid-build loses nothing committed: rows are written and fsynced before the index names them, and
anything past the last indexed row is truncated on the next open.

Measured (``bench/train_data.py --faces 50000``, 2 cores): opening both caches of 100,000 faces when
nothing changed took 3.8 s (103 px) to 4.6 s (171 px), most of it a stat per crop and SQLite; with the
face set's listing index (faceset.LISTING_INDEX) 2.9 s against 4.0 s in the same run at 103 px (medians
of 3 alternating runs, machine busy), of which the stat per crop is ~0.8 s and the split ~0.65 s; a cold
build is bounded by the CPU: PNG decoding (~1.45 ms a 256 px crop per core, crops as extract now writes
them), resizing and writing, ~156 s (103 px) to ~204 s (171 px, 8.8 GB written) for both sets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import FacetwinError
from facetwin.faces.align import transform_points
from facetwin.faceset import FaceEntry, FaceRecord, FaceSet

CACHE_FORMAT = 1
N_POINTS = 478
BATCH = 256  # faces decoded between commits (and progress updates)
DECODE_THREADS = 2  # cv2.imdecode and cv2.resize let go of the GIL: measured best on 2 cores

ProgressCallback = Callable[[int, int], None]  # (done, total) while decoding


@dataclass(frozen=True)
class CacheReport:
    """What opening the cache did: faces reused as they were, decoded now, dropped (deleted from the set),
    whether the files were compacted, and how long it took (seconds)."""

    reused: int
    decoded: int
    dropped: int
    compacted: bool
    seconds: float


@dataclass(frozen=True)
class CacheArrays:
    """Read-only maps of a cache's rows: crops (rows, size, size, 3) uint8 and points (rows, 478, 2) float32."""

    crops: np.ndarray
    points: np.ndarray


def _stamps(folder: Path, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of each file ``folder/name``: how the cache tells a changed crop. Plain string
    paths: pathlib's objects cost 4x the stat itself at 100,000 faces."""
    prefix = os.fspath(folder) + os.sep
    stamps = {}
    for name in names:
        info = os.stat(prefix + name)
        stamps[name] = (info.st_size, info.st_mtime_ns)
    return stamps


class FaceCache:
    """The cache of the face set at ``faceset_root`` for one working ``size`` (pixels a side)."""

    def __init__(self, faceset_root: Path, size: int) -> None:
        self.faceset_root, self.size = Path(faceset_root), size
        self.folder = self.faceset_root / "cache" / f"w{size}"
        self.crops_path, self.points_path = self.folder / "crops.u8", self.folder / "points.f32"
        self.crop_bytes = size * size * 3
        self.point_bytes = N_POINTS * 2 * 4

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = open(self.folder / ".lock", "w")
        except OSError as exc:
            raise FacetwinError(f"{self.folder}: cannot write the training cache here ({exc.strerror or exc})") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            db = sqlite3.connect(self.folder / "index.db", isolation_level=None)
            try:
                db.execute("CREATE TABLE IF NOT EXISTS rows (filename TEXT PRIMARY KEY, row INTEGER NOT NULL UNIQUE,"
                           " bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL)")  # fmt: skip
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                version = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
                if version is None:
                    db.execute("INSERT INTO meta VALUES ('format_version', ?)", (str(CACHE_FORMAT),))
                elif int(version[0]) != CACHE_FORMAT:  # a cache is disposable: start it again
                    db.execute("DELETE FROM rows")
                    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(CACHE_FORMAT),))
                yield db
            finally:
                db.close()

    def update(self, store: FaceSet, entries: Sequence[FaceEntry],
               progress: ProgressCallback | None = None) -> tuple[dict[str, int], CacheReport]:
        """Bring the cache up to date with ``entries`` (all of ``store``'s faces): returns each face's row by
        crop file name, and what was done. Raises FacetwinError when a crop cannot be read or the cache
        cannot be written."""
        started = time.monotonic()
        with self._locked() as db:
            known = {name: (row, size, mtime) for name, row, size, mtime in db.execute("SELECT filename, row, bytes, mtime_ns FROM rows")}
            try:
                stamps = _stamps(self.faceset_root / "faces", [e.filename for e in entries])
            except OSError as exc:
                raise FacetwinError(f"{exc.filename}: missing or unreadable crop") from exc
            wanted = {e.filename for e in entries}
            dropped = [name for name in known if name not in wanted]
            stale = [e.filename for e in entries if e.filename not in known or known[e.filename][1:] != stamps[e.filename]]
            kept = wanted.difference(stale)
            next_row = 1 + max((row for name, (row, _, _) in known.items() if name in kept), default=-1)
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM rows WHERE filename = ?", [(n,) for n in dropped + stale])
            db.execute("COMMIT")
            compacted = False
            if kept and next_row > 2 * len(kept):
                next_row, compacted = self._compact(db), True
            self._truncate(next_row)
            self._append(db, store, stale, stamps, next_row, progress)
            rows = {name: row for name, row in db.execute("SELECT filename, row FROM rows")}
        return rows, CacheReport(len(kept), len(stale), len(dropped), compacted, time.monotonic() - started)

    def _truncate(self, rows: int) -> None:
        """Cut whatever a killed build appended past the last indexed row."""
        for path, width in ((self.crops_path, self.crop_bytes), (self.points_path, self.point_bytes)):
            with open(path, "ab") as handle:
                if handle.tell() != rows * width:
                    handle.truncate(rows * width)

    def _decode(self, record: FaceRecord) -> tuple[np.ndarray, np.ndarray]:
        path = self.faceset_root / "faces" / record.filename
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB) if data.size else None  # RGB straight from the decoder
        if image is None:
            raise FacetwinError(f"{path}: missing or unreadable crop")
        crop = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        scale = self.size / record.crop_size
        points = (transform_points(record.landmarks, record.frame_to_crop) * scale).astype(np.float32)
        return crop, points

    def _append(self, db: sqlite3.Connection, store: FaceSet, names: Sequence[str], stamps: dict[str, tuple[int, int]],
                first_row: int, progress: ProgressCallback | None) -> None:
        if not names:
            return
        row = first_row
        chunks = [names[start : start + BATCH] for start in range(0, len(names), BATCH)]
        try:
            with open(self.crops_path, "ab") as crops, open(self.points_path, "ab") as points, \
                    ThreadPoolExecutor(DECODE_THREADS) as pool:  # fmt: skip

                def submit(chunk: Sequence[str]) -> list[tuple[FaceRecord, Future[tuple[np.ndarray, np.ndarray]]]]:
                    return [(record, pool.submit(self._decode, record)) for record in store.records_for(chunk)]

                # The next chunk decodes while this one is written, fsynced and indexed.
                pending = submit(chunks[0])
                for k in range(len(chunks)):
                    current, pending = pending, (submit(chunks[k + 1]) if k + 1 < len(chunks) else [])
                    for _, future in current:
                        crop, point = future.result()
                        crops.write(np.ascontiguousarray(crop).tobytes())
                        points.write(np.ascontiguousarray(point).tobytes())
                    for handle in (crops, points):
                        handle.flush()
                        os.fsync(handle.fileno())
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)",
                                   [(r.filename, row + i, *stamps[r.filename]) for i, (r, _) in enumerate(current)])
                    db.execute("COMMIT")
                    row += len(current)
                    if progress is not None:
                        progress(row - first_row, len(names))
        except OSError as exc:
            raise FacetwinError(f"{self.folder}: cannot write the training cache ({exc.strerror or exc})") from exc

    def _compact(self, db: sqlite3.Connection) -> int:
        """Rewrite the files with only the indexed rows, in row order; returns the new row count."""
        live = db.execute("SELECT filename, row FROM rows ORDER BY row").fetchall()
        arrays = self.arrays(len_hint=max((row for _, row in live), default=-1) + 1)
        for path, data in ((self.crops_path, arrays.crops), (self.points_path, arrays.points)):
            partial = path.with_name(path.name + ".compact")
            with open(partial, "wb") as handle:
                for _, row in live:
                    handle.write(np.ascontiguousarray(data[row]).tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        db.execute("BEGIN IMMEDIATE")
        db.executemany("UPDATE rows SET row = ? WHERE filename = ?", [(-1 - i, name) for i, (name, _) in enumerate(live)])
        db.execute("UPDATE rows SET row = -1 - row")
        db.execute("COMMIT")
        return len(live)

    def arrays(self, len_hint: int | None = None) -> CacheArrays:
        """Read-only memory maps of the cache files (all their complete rows)."""
        rows = len_hint if len_hint is not None else self.crops_path.stat().st_size // self.crop_bytes
        if rows <= 0:
            return CacheArrays(np.zeros((0, self.size, self.size, 3), np.uint8), np.zeros((0, N_POINTS, 2), np.float32))
        # Plain ndarray views of the maps (which they keep open): every array taken from a numpy.memmap is a
        # memmap too, and each numpy operation on one pays memmap's Python-level hooks (a face's landmark
        # transform in region_masks: 8.6 against 6.2 us, measured).
        crops = np.asarray(np.memmap(self.crops_path, np.uint8, "r", shape=(rows, self.size, self.size, 3)))
        points = np.asarray(np.memmap(self.points_path, np.float32, "r", shape=(rows, N_POINTS, 2)))
        return CacheArrays(crops, points)


def cache_face_set(faceset_root: Path, size: int, progress: ProgressCallback | None = None) -> tuple[list[FaceEntry], dict[str, int], CacheReport]:
    """Open the face set, check its template, and update its cache for ``size``: (its faces in set order,
    each face's cache row by crop file name, what was done)."""
    with FaceSet(faceset_root) as store:
        store.require_current_template()
        entries = store.entries()
        rows, report = FaceCache(Path(faceset_root), size).update(store, entries, progress)
    return entries, rows, report
