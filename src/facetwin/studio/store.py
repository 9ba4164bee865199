"""The studio's own records in ``.studio/studio.db`` (SQLite, WAL): jobs, media checked by the content gate,
and dropped faces kept for undo.

The server and the job processes both write here; every call opens its own short connection (a few tens
of microseconds), so no connection is shared across threads or processes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    resumes INTEGER
);
CREATE TABLE IF NOT EXISTS media (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    verdict TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drops (
    id INTEGER PRIMARY KEY,
    faceset TEXT NOT NULL,
    created REAL NOT NULL,
    rows TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
"""

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
FINAL = frozenset({DONE, FAILED, CANCELLED, INTERRUPTED})
RESUMABLE_KINDS = frozenset({"extract", "train"})  # the stages that continue where they stopped


@dataclass(frozen=True)
class Job:
    """One background job. ``progress``: done, total, unit, rate (units/s), eta_s, stage (what it is doing)."""

    id: int
    kind: str  # extract, train, convert, evaluate
    title: str
    params: dict[str, Any]
    state: str
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    cancel_requested: bool
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    resumes: int | None = None

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    @property
    def resumable(self) -> bool:
        """An interrupted or cancelled job can be run again; extract and training continue where they stopped."""
        return self.state in (INTERRUPTED, CANCELLED, FAILED)

    @property
    def continues(self) -> bool:
        return self.kind in RESUMABLE_KINDS


@dataclass(frozen=True)
class MediaCheck:
    path: str  # project-relative
    verdict: str  # passed, refused, unreadable
    message: str


class Store:
    """``.studio/studio.db`` of one project."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # jobs ------------------------------------------------------------------------------------------------

    def add_job(self, kind: str, title: str, params: dict[str, Any], resumes: int | None = None) -> int:
        with self._connect() as db:
            cursor = db.execute("INSERT INTO jobs (kind, title, params, state, created, resumes) VALUES (?, ?, ?, ?, ?, ?)",
                                (kind, title, json.dumps(params), QUEUED, time.time(), resumes))  # fmt: skip
            return int(cursor.lastrowid or 0)

    def job(self, job_id: int) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self, limit: int = 100) -> list[Job]:
        with self._connect() as db:
            return [_job(r) for r in db.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))]

    def jobs_in(self, *states: str) -> list[Job]:
        with self._connect() as db:
            marks = ", ".join("?" * len(states))
            return [_job(r) for r in db.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", states)]

    def claim_job(self, job_id: int) -> bool:
        """Mark a queued job running; False when it is no longer queued (cancelled meanwhile)."""
        with self._connect() as db:
            cursor = db.execute("UPDATE jobs SET state = ?, started = ? WHERE id = ? AND state = ?", (RUNNING, time.time(), job_id, QUEUED))
            return cursor.rowcount == 1

    def set_pid(self, job_id: int, pid: int) -> None:
        with self._connect() as db:
            db.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))

    def set_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress), job_id))

    def finish_job(self, job_id: int, state: str, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Record a job's end. A job already finished keeps its first ending, except that a job the server
        marked interrupted may still be closed by its own process (which knows best how it ended)."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = ?, finished = ?, result = ?, error = ? WHERE id = ? AND state IN (?, ?, ?)",
                       (state, time.time(), json.dumps(result or {}), error, job_id, QUEUED, RUNNING, INTERRUPTED))  # fmt: skip

    def request_cancel(self, job_id: int) -> None:
        with self._connect() as db:
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            db.execute("UPDATE jobs SET state = ?, finished = ? WHERE id = ? AND state = ?", (CANCELLED, time.time(), job_id, QUEUED))

    def mark_interrupted(self, job_id: int, why: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ? AND state = ?",
                       (INTERRUPTED, time.time(), why, job_id, RUNNING))  # fmt: skip

    # media checked by the content gate --------------------------------------------------------------------

    def media_check(self, path: str, size: int, mtime: float) -> MediaCheck | None:
        with self._connect() as db:
            row = db.execute("SELECT path, verdict, message FROM media WHERE path = ? AND size = ? AND mtime = ?",
                             (path, size, mtime)).fetchone()  # fmt: skip
        return None if row is None else MediaCheck(*row)

    def media_checks(self) -> dict[str, MediaCheck]:
        with self._connect() as db:
            return {r[0]: MediaCheck(*r) for r in db.execute("SELECT path, verdict, message FROM media")}

    def record_media(self, path: str, size: int, mtime: float, verdict: str, message: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?)", (path, size, mtime, verdict, message))

    def forget_media(self, path: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM media WHERE path = ?", (path,))

    # dropped faces --------------------------------------------------------------------------------------

    def add_drop(self, faceset: str, rows: list[dict[str, Any]]) -> int:
        with self._connect() as db:
            cursor = db.execute("INSERT INTO drops (faceset, created, rows) VALUES (?, ?, ?)", (faceset, time.time(), json.dumps(rows)))
            return int(cursor.lastrowid or 0)

    def last_drop(self, faceset: str) -> tuple[int, list[dict[str, Any]]] | None:
        with self._connect() as db:
            row = db.execute("SELECT id, rows FROM drops WHERE faceset = ? AND undone = 0 ORDER BY id DESC LIMIT 1", (faceset,)).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def undo_drop(self, drop_id: int) -> None:
        with self._connect() as db:
            db.execute("UPDATE drops SET undone = 1 WHERE id = ?", (drop_id,))

    def drops_left(self, faceset: str) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM drops WHERE faceset = ? AND undone = 0", (faceset,)).fetchone()[0])


def _job(row: tuple[Any, ...]) -> Job:
    (id_, kind, title, params, state, created, started, finished, pid, cancel, progress, result, error, resumes) = row
    return Job(id_, kind, title, json.loads(params), state, created, started, finished, pid, bool(cancel),
               json.loads(progress), json.loads(result), error, resumes)  # fmt: skip
