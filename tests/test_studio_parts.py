"""The studio's parts on real faces: the face grid's drop and undo, its sorts, the merge's frame seek, the
training page's "is it done?" and curves."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from facetwin.errors import FacetwinError
from facetwin.extract import extract
from facetwin.faceset import FaceSet
from facetwin.media import MediaSource, read_frames
from facetwin.options import ExtractOptions
from facetwin.studio.curation import SORTS, FaceSets
from facetwin.studio.merge import read_frame
from facetwin.studio.project import Project
from facetwin.studio.store import Store
from facetwin.studio.training import Curves, is_it_done, svg_chart


@pytest.fixture
def project(small_sets: dict[str, Path], tmp_path: Path) -> Project:
    project = Project.open(tmp_path / "project")
    shutil.copytree(small_sets["a"], project.faceset("A"), ignore=shutil.ignore_patterns("cache"))
    return project


def _records(folder: Path) -> dict[str, tuple[object, ...]]:
    with FaceSet(folder) as store:
        return {r.filename: (r.source_fingerprint, r.frame_index, r.box, r.score, r.landmarks.tobytes(), r.frame_to_crop.tobytes(),
                             r.sharpness) for r in store.iter_faces()}  # fmt: skip


def test_drop_removes_faces_from_the_set_on_disk_and_undo_puts_them_back(project: Project) -> None:
    sets = FaceSets(project, Store(project.database))
    folder = project.faceset("A")
    before = _records(folder)
    chosen = sorted(before)[3:6]
    assert sets.drop("A", chosen + ["not_a_face.png", "../faceset.db"]) == 3
    after = _records(folder)
    assert set(after) == set(before) - set(chosen)
    assert not any((folder / "faces" / name).exists() for name in chosen)
    assert len(sets.rows("A")) == len(before) - 3 and sets.can_undo("A")
    assert sets.drop("A", chosen) == 0, "a dropped face cannot be dropped twice"

    assert sets.undo("A") == 3
    assert _records(folder) == before, "every column of every face is back"
    assert all((folder / "faces" / name).is_file() for name in chosen)
    assert not sets.can_undo("A") and sets.undo("A") == 0


def test_two_drops_undo_in_reverse_order(project: Project) -> None:
    sets = FaceSets(project, Store(project.database))
    names = [r.filename for r in sets.rows("A")]
    sets.drop("A", names[:2])
    sets.drop("A", names[2:5])
    assert len(sets.rows("A")) == len(names) - 5
    assert sets.undo("A") == 3 and len(sets.rows("A")) == len(names) - 2
    assert sets.undo("A") == 2 and [r.filename for r in sets.rows("A")] == names


def test_sorts_order_the_faces_by_what_they_say(project: Project) -> None:
    sets = FaceSets(project, Store(project.database))
    rows = sets.rows("A")
    assert len(rows) > 20
    for sort, (_, key, descending) in SORTS.items():
        if sort == "identity":  # embedding every face takes a while: its own test below
            continue
        page = sets.page("A", sort, 1, size=10)
        values = [getattr(r, key) for r in page.rows]
        assert values == sorted(values, reverse=descending), sort
        assert page.pages == -(-len(rows) // 10) and page.total == len(rows)
    posed = sets.with_pose("A")
    assert any(abs(r.yaw) > 1 for r in posed) and all(abs(r.yaw) < 90 for r in posed), "head turn in degrees"
    last = sets.page("A", "blur", 10**6, size=10)
    assert last.number == last.pages and len(last.rows) == len(rows) - (last.pages - 1) * 10
    with pytest.raises(FacetwinError, match="sort"):
        sets.page("A", "nonsense")
    with pytest.raises(FacetwinError, match="not a face"):
        sets.thumbnail("A", "../faceset.db")
    with pytest.raises(FacetwinError, match="not a face"):
        sets.thumbnail("A", "9999_9999999_0.png")
    thumb = sets.thumbnail("A", rows[0].filename)
    assert thumb.is_file() and thumb.is_relative_to(project.studio_dir) and thumb.read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.slow  # over 4 s: keeps make check under two minutes
def test_identity_sort_puts_someone_else_first(project: Project, short_clips: dict[str, Path]) -> None:
    """A few faces of B extracted into A's set: sorted by identity, they come first, beyond dlib's 0.6."""
    report = extract([short_clips["b2"]], project.faceset("A"), ExtractOptions(every=15, max_faces=1))
    assert report.exit_code == 0, report.problems
    sets = FaceSets(project, Store(project.database))
    strangers = {r.filename for r in sets.rows("A") if r.source == short_clips["b2"].name}
    assert 3 <= len(strangers) < len(sets.rows("A")) // 4
    rows, unmeasured = sets.with_identity("A")
    assert unmeasured == 0
    ranked = sorted(rows, key=lambda r: r.identity, reverse=True)
    assert {r.filename for r in ranked[: len(strangers)]} == strangers
    assert all(r.identity > 0.6 for r in ranked[: len(strangers)])
    assert {r.filename for r in sets.page("A", "identity", 1, size=len(strangers)).rows} == strangers
    assert sum(r.identity < 0.6 for r in rows) >= len(rows) - len(strangers) - 2, "A's own faces near the median"


def test_read_frame_seeks_to_the_frame_the_decoder_reaches(short_clips: dict[str, Path]) -> None:
    clip = short_clips["a"]
    frames = {f.index: f.rgb for f in read_frames(MediaSource(clip, "video")) if f.index in (0, 37, 120)}
    for index, expected in frames.items():
        rgb, _ = read_frame(clip, index)
        assert np.array_equal(rgb, expected), index
    with pytest.raises(FacetwinError):
        read_frame(clip, 10**6)


def _curves(points: list[tuple[float, float]], quality: list[tuple[float, float]] | None = None) -> Curves:
    return Curves([], [("held-out L1 A", "#000", points)], [("A→B", "#000", quality or [])], int(points[-1][0]) if points else 0)


def test_is_it_done_reads_the_trend() -> None:
    assert is_it_done(_curves([(0, 0.3), (250, 0.2)])).state == "early"
    falling = [(i * 250.0, 0.3 * 0.9**i) for i in range(1, 12)]
    assert is_it_done(_curves(falling)).state == "improving"
    flat = [(i * 250.0, 0.1 + 0.0002 * (-1) ** i) for i in range(1, 12)]
    verdict = is_it_done(_curves(flat))
    assert verdict.state == "done" and "stopped improving" in verdict.headline
    slow = [(i * 250.0, 0.1 - 0.0004 * i) for i in range(1, 12)]
    assert is_it_done(_curves(slow)).state == "slowing"
    # the identity curve, when the model has one, is the one read
    identity_falling = [(i * 500.0, 0.9 - 0.03 * i) for i in range(1, 8)]
    verdict = is_it_done(_curves(flat, identity_falling))
    assert verdict.state == "improving" and "identity" in verdict.detail


def test_charts_are_well_formed_svg() -> None:
    svg = svg_chart([("loss A", "#1f77b4", [(1, 0.5), (2, 0.4), (3, 0.35)]), ("empty", "#ff7f0e", [])], "loss", "loss", log=True,
                    guide=(0.3, "line"))  # fmt: skip
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and len(root.findall(".//{*}polyline")) == 1
    assert ET.fromstring(svg_chart([], "nothing", "y")).tag.endswith("svg")
