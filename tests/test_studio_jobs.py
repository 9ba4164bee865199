"""Studio jobs: persisted, queued one at a time, interrupted by a server restart and resumable, cancellable
(training saves first). Against the real ``facetwin studio`` command and real face sets."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from studio_server import StudioProcess

from facetwin.modeldir import ModelDir
from facetwin.studio.project import Project
from facetwin.studio.runner import worker_alive


def _project_with_sets(root: Path, small_sets: dict[str, Path]) -> Path:
    project = Project.open(root).root
    for side, name in (("a", "A"), ("b", "B")):
        shutil.copytree(small_sets[side], project / "facesets" / name, ignore=shutil.ignore_patterns("cache"))
    return project


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_server_restart_during_training_shows_it_interrupted_and_resumable(small_sets: dict[str, Path], tmp_path: Path) -> None:
    project = _project_with_sets(tmp_path / "project", small_sets)
    form = {"model": "M", "faceset_a": "A", "faceset_b": "B", "architecture": "lightweight", "minutes": "30",
            "batch_size": "4", "save_every": "100000", "preview_every": "100000", "workers": "0"}  # fmt: skip
    first = StudioProcess(project).start()
    try:
        assert first.post_form("/jobs/train", form).status == 303
        job = _wait(lambda: next((j for j in first.get("/api/jobs").json() if (j["progress"].get("done") or 0) >= 3
                                  and j["progress"].get("stage", "").startswith("training")), None), 600, "training steps")
        pid = job["pid"]
        assert worker_alive(pid, job["id"])
    finally:
        first.stop(signal.SIGKILL)  # the server dies without a word to its jobs
    # the orphaned training notices, saves a checkpoint and stops
    _wait(lambda: not worker_alive(pid, job["id"]), 120, "the orphaned training to stop")
    saved = ModelDir(project / "models" / "M").checkpoints()
    assert saved and int(saved[-1].name) >= 3, "training saved where it stopped"

    with StudioProcess(project) as second:
        shown = second.get(f"/api/jobs/{job['id']}").json()
        assert shown["state"] == "interrupted" and shown["resumable"]
        page = second.get(f"/jobs/{job['id']}").body.decode()
        assert 'data-state="interrupted"' in page and ">Resume<" in page
        listing = second.get("/jobs").body.decode()
        assert f'id="job-{job["id"]}" class="state-interrupted"' in listing

        resumed = second.post_form(f"/jobs/{job['id']}/resume", {})
        assert resumed.status == 303
        new_id = int(resumed.headers["location"].rsplit("/", 1)[1])
        stopped_at = int(saved[-1].name)
        again = _wait(lambda: (lambda j: j if (j["progress"].get("done") or 0) > stopped_at + 1
                               and j["progress"].get("stage", "").startswith("training") else None)(
                                   second.get(f"/api/jobs/{new_id}").json()), 600, "the resumed training to step on")
        assert again["resumes"] == job["id"]
        log = second.get(f"/api/jobs/{new_id}").json()["log"]
        assert "facetwin train" in log.splitlines()[0], "the log starts with the equivalent command"

        assert second.post_form(f"/jobs/{new_id}/cancel", {}).status == 303
        ended = second.wait_for_job(new_id, {"cancelled", "failed", "done", "interrupted"}, timeout=120)
        assert ended["state"] == "cancelled", ended
        checkpoints = ModelDir(project / "models" / "M").checkpoints()
        assert int(checkpoints[-1].name) > stopped_at, "cancelling training saved a checkpoint past the first one"
        runs = (project / "models" / "M" / "runs.jsonl").read_text().splitlines()
        assert len(runs) == 2 and f'"from_iteration": {stopped_at}' in runs[1], "the second run resumed from the checkpoint"


@pytest.mark.slow  # three extract jobs: about a minute
def test_jobs_run_one_at_a_time_and_a_cancelled_one_runs_again(short_clips: dict[str, Path], tmp_path: Path) -> None:
    """Extracts queued together run one after the other; a queued job cancelled can be run again; a finished one cannot."""
    project = Project.open(tmp_path / "project").root
    shutil.copy(short_clips["b2"], project / "media" / "b2.mp4")
    with StudioProcess(project) as studio:
        assert b"passed" in studio.post_form("/media/add", {"path": "media/b2.mp4"}).body
        fields = {"media": "media/b2.mp4", "every": "2", "max_faces": "1"}
        ids = [int(studio.post_form("/jobs/extract", {**fields, "faceset": name}).headers["location"].rsplit("/", 1)[1])
               for name in ("one", "two", "three")]  # fmt: skip
        assert studio.post_form(f"/jobs/{ids[2]}/cancel", {}).status == 303  # still queued: cancelled at once
        first = studio.wait_for_job(ids[0], {"done", "failed"}, 300)
        second = studio.wait_for_job(ids[1], {"done", "failed"}, 300)
        assert first["state"] == second["state"] == "done", (first, second)
        assert second["started"] >= first["finished"] - 0.5, "one heavy job at a time"
        assert first["progress"]["total"] == first["progress"]["done"] > 0 and first["progress"]["unit"] == "frames"
        third = studio.get(f"/api/jobs/{ids[2]}").json()
        assert third["state"] == "cancelled" and third["started"] is None and third["resumable"]
        assert not (project / "facesets" / "three").exists()

        assert studio.post_form(f"/jobs/{ids[0]}/resume", {}).status == 409, "a finished job is not run again"
        again = int(studio.post_form(f"/jobs/{ids[2]}/resume", {}).headers["location"].rsplit("/", 1)[1])
        rerun = studio.wait_for_job(again, {"done", "failed"}, 300)
        assert rerun["state"] == "done" and rerun["result"]["faces"] == first["result"]["faces"] > 0
        assert rerun["resumes"] == ids[2]
