"""The model folder and the face set as stored things: format versions, migration of the old format,
the mean-face template they were aligned to, and what a resume may and may not change."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli
from facetwin.errors import FacetwinError
from facetwin.faceset import FACESET_FORMAT, FaceSet
from facetwin.modeldir import MODEL_FORMAT, ModelDir
from facetwin.options import TrainConfig


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(small_sets: dict[str, Path], **changes: object) -> TrainConfig:
    return TrainConfig(str(small_sets["a"]), str(small_sets["b"]), **{"model": "lightweight", **changes})  # type: ignore[arg-type]


def test_a_model_folder_records_its_format_and_template(small_sets: dict[str, Path], tmp_path: Path) -> None:
    folder = ModelDir(tmp_path / "m")
    folder.create(_config(small_sets))
    stored = json.loads(folder.config_path.read_text())
    assert stored["format_version"] == MODEL_FORMAT and len(stored["mean_face_sha256"]) == 64
    assert folder.read_config() == _config(small_sets)


def test_an_old_model_folder_is_migrated_in_place(small_sets: dict[str, Path], tmp_path: Path) -> None:
    folder = ModelDir(tmp_path / "old")
    folder.root.mkdir()
    old = _config(small_sets).to_json()  # format 1: the settings alone
    folder.config_path.write_text(json.dumps(old))
    assert folder.read_config() == _config(small_sets)
    migrated = json.loads(folder.config_path.read_text())
    assert migrated["format_version"] == MODEL_FORMAT and {k: migrated[k] for k in old} == old


def test_a_newer_format_or_another_template_is_refused(small_sets: dict[str, Path], tmp_path: Path) -> None:
    folder = ModelDir(tmp_path / "m")
    folder.create(_config(small_sets))
    data = json.loads(folder.config_path.read_text())
    folder.config_path.write_text(json.dumps({**data, "format_version": MODEL_FORMAT + 1}))
    with pytest.raises(FacetwinError, match=f"format {MODEL_FORMAT + 1} is newer"):
        folder.read_config()
    folder.config_path.write_text(json.dumps({**data, "mean_face_sha256": "0" * 64}))
    with pytest.raises(FacetwinError, match="another mean-face template"):
        folder.read_config()


@pytest.mark.slow  # over 4 s: keeps make check under two minutes
def test_resume_refuses_a_changed_architecture_and_touches_nothing(small_sets: dict[str, Path], tmp_path: Path) -> None:
    folder = ModelDir(tmp_path / "m")
    folder.create(_config(small_sets))
    before = _snapshot(folder.root)
    for setting, value in (("model", "masked128"), ("seed", 7), ("holdout", 0.1)):
        with pytest.raises(FacetwinError, match=f"--{setting} is .* cannot change"):
            folder.resume({setting: value})
    assert _snapshot(folder.root) == before
    result = run_cli("train", "-m", folder.root, "--model", "masked128", "--iterations", "1")
    assert result.returncode == 1 and "--model is 'lightweight' for this model and cannot change" in result.stderr
    assert _snapshot(folder.root) == before


def test_resume_applies_a_changed_run_setting(small_sets: dict[str, Path], tmp_path: Path) -> None:
    folder = ModelDir(tmp_path / "m")
    folder.create(_config(small_sets))
    resumed = folder.resume({"learning_rate": 1e-4, "batch_size": 8, "model": "lightweight", "seed": None})
    assert resumed.config.learning_rate == 1e-4 and resumed.config.batch_size == 8
    assert sorted(resumed.changes) == ["batch size: 16 -> 8", "learning rate: None -> 0.0001"]
    assert folder.read_config() == resumed.config


def test_an_unknown_model_name_leaves_no_folder(small_sets: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FacetwinError, match="unknown model 'nope'; choose one of original, lightweight, masked128, masked256"):
        ModelDir(tmp_path / "api").create(_config(small_sets, model="nope"))
    assert not (tmp_path / "api").exists()
    result = run_cli("train", small_sets["a"], small_sets["b"], "-m", tmp_path / "cli", "--model", "nope", "--iterations", "1")
    assert result.returncode == 2 and "nope" in result.stderr and "original" in result.stderr
    assert not (tmp_path / "cli").exists()


def test_an_old_face_set_opens_and_is_migrated(small_sets: dict[str, Path], tmp_path: Path) -> None:
    faceset = tmp_path / "old"
    shutil.copytree(small_sets["a"], faceset)
    with sqlite3.connect(faceset / "faceset.db") as db:  # today's set, made format 1: no meta table
        db.execute("DROP TABLE meta")
    with FaceSet(faceset) as store:
        count = len(store.faces())
        assert store.meta["format_version"] == str(FACESET_FORMAT) and store.meta["migrated_from"] == "1"
        assert store.aligned_to_current_template
    assert count > 50
    with sqlite3.connect(faceset / "faceset.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FACESET_FORMAT + 1),))
    with pytest.raises(FacetwinError, match="newer than this facetwin reads"):
        FaceSet(faceset)


def test_a_face_set_of_another_template_is_refused_for_training(small_sets: dict[str, Path], tmp_path: Path) -> None:
    from facetwin.facepool import load_pool

    faceset = tmp_path / "other"
    shutil.copytree(small_sets["a"], faceset)
    with sqlite3.connect(faceset / "faceset.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'mean_face_sha256'", ("0" * 64,))
    with pytest.raises(FacetwinError, match="aligned to another mean-face template"):
        load_pool(faceset, 64)
