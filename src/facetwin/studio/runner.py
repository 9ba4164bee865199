"""The job queue: starts queued jobs as worker processes, one heavy job at a time, and follows them.

A thread of the server process. Jobs and their states live in the project's studio.db, so a page reload
or a new server shows them again. At start, a job the database says is running belongs to a server that
died: it is marked interrupted (its process, if still alive, notices its parent is gone and stops, saving
training first), and no new job starts until that process has exited, so a resumed training never runs
beside the one it resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from facetwin.studio.project import Project
from facetwin.studio.store import CANCELLED, FAILED, QUEUED, RUNNING, Job, Store

POLL_S = 0.25


def worker_alive(pid: int, job_id: int) -> bool:
    """True when process ``pid`` is alive and is the worker of job ``job_id`` (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().split(b"\0")
    except OSError:
        return False
    return b"facetwin.studio.worker" in args and str(job_id).encode() in args


@dataclass
class JobRunner:
    """Runs the project's queued jobs, ``max_running`` at a time (1: one heavy job at a time)."""

    project: Project
    store: Store
    max_running: int = 1
    python: str = sys.executable
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _orphans: dict[int, int] = field(default_factory=dict)  # job id -> pid of a worker left by an earlier server
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def recover(self) -> list[int]:
        """Mark jobs left running by an earlier server interrupted; return their ids."""
        interrupted = []
        for job in self.store.jobs_in(RUNNING):
            self.store.mark_interrupted(job.id, "the studio server stopped while this job ran")
            if job.pid and worker_alive(job.pid, job.id):
                self._orphans[job.id] = job.pid
            interrupted.append(job.id)
        return interrupted

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="studio-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was queued or cancelled: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop following jobs (the server is shutting down): running workers are asked to stop (training
        saves), and they are marked interrupted by the next server if they outlive this one."""
        self._stop.set()
        self._wake.set()
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children.values():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def cancel(self, job_id: int) -> None:
        """Cancel a queued job, or ask a running one to stop (training saves a checkpoint first)."""
        self.store.request_cancel(job_id)
        child = self._children.get(job_id)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        self.wake()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._reap()
            self._start_next()
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _reap(self) -> None:
        for job_id, child in list(self._children.items()):
            code = child.poll()
            if code is None:
                continue
            del self._children[job_id]
            job = self.store.job(job_id)
            if job is not None and job.state == RUNNING:  # the worker died before it could say how it ended
                state = CANCELLED if job.cancel_requested else FAILED
                self.store.finish_job(job_id, state, error=f"the job process ended with exit code {code}")
        for job_id, pid in list(self._orphans.items()):
            if not worker_alive(pid, job_id):
                del self._orphans[job_id]

    def busy(self) -> int:
        return len(self._children) + len(self._orphans)

    def _start_next(self) -> None:
        while self.busy() < self.max_running:
            queued = self.store.jobs_in(QUEUED)
            if not queued:
                return
            self._launch(queued[0])

    def _launch(self, job: Job) -> None:
        if not self.store.claim_job(job.id):
            return
        log = self.log_path(job.id)
        with open(log, "ab") as handle:
            child = subprocess.Popen(
                [self.python, "-m", "facetwin.studio.worker", str(self.project.root), str(job.id), str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, cwd=self.project.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            )  # fmt: skip
        self._children[job.id] = child
        self.store.set_pid(job.id, child.pid)

    def log_path(self, job_id: int) -> Path:
        return self.project.studio_dir / "logs" / f"{job_id}.log"
