"""The training cache: decoded once, reused, updated when crops are deleted, added or changed, safe after
a killed build, compacted, and pickled without pixels (what DataLoader workers receive)."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from facetwin.extract import extract
from facetwin.facecache import FaceCache, cache_face_set
from facetwin.facepool import load_pool
from facetwin.faceset import FaceSet
from facetwin.options import ExtractOptions

SIZE = 103  # lightweight's working size


@pytest.fixture()
def faceset(small_sets: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "set"
    shutil.copytree(small_sets["b"], copy, ignore=shutil.ignore_patterns("cache"))
    return copy


def _decoded(faceset: Path, filename: str) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(faceset / "faces" / filename)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def test_built_once_then_reused_and_pixels_are_the_crops(faceset: Path) -> None:
    entries, rows, first = cache_face_set(faceset, SIZE)
    assert first.decoded == len(entries) > 50 and first.reused == 0
    _, again_rows, second = cache_face_set(faceset, SIZE)
    assert second.decoded == 0 and second.reused == len(entries) and again_rows == rows
    pool = load_pool(faceset, SIZE)
    for i in (0, len(pool) // 2, len(pool) - 1):
        np.testing.assert_array_equal(pool.crop(i), _decoded(faceset, entries[i].filename))
    with FaceSet(faceset) as store:
        record = store.records_for([entries[3].filename])[0]
    expected = (record.landmarks[:, :2] @ record.frame_to_crop[:, :2].T + record.frame_to_crop[:, 2]) * SIZE / record.crop_size
    np.testing.assert_allclose(pool.points(3), expected, rtol=1e-5)


def test_deleted_added_and_changed_crops_update_it(faceset: Path, short_clips: dict[str, Path]) -> None:
    entries, rows, _ = cache_face_set(faceset, SIZE)
    gone, changed = entries[10].filename, entries[20].filename
    (faceset / "faces" / gone).unlink()
    other = cv2.imread(str(faceset / "faces" / entries[30].filename))
    cv2.imwrite(str(faceset / "faces" / changed), other)  # the user replaced a crop with another picture
    assert extract([short_clips["b2"]], faceset, ExtractOptions(every=2, max_faces=1)).exit_code == 0
    after, new_rows, report = cache_face_set(faceset, SIZE)
    added = len(after) - (len(entries) - 1)
    assert report.dropped == 1 and report.decoded == added + 1 and report.reused == len(entries) - 2
    assert gone not in new_rows
    kept = [e.filename for e in entries if e.filename not in (gone, changed)]
    assert all(new_rows[name] == rows[name] for name in kept), "rows of untouched faces do not move"
    pool = load_pool(faceset, SIZE)
    position = [e.filename for e in after].index(changed)
    np.testing.assert_array_equal(pool.crop(position), _decoded(faceset, changed))
    np.testing.assert_array_equal(pool.crop(len(pool) - 1), _decoded(faceset, after[-1].filename))


def test_a_killed_build_leaves_a_cache_that_repairs_itself(faceset: Path) -> None:
    entries, _, _ = cache_face_set(faceset, SIZE)
    cache = FaceCache(faceset, SIZE)
    with open(cache.crops_path, "ab") as handle:  # half a row written when the run was killed
        handle.write(b"\xff" * (cache.crop_bytes // 2))
    _, rows, report = cache_face_set(faceset, SIZE)
    assert report.decoded == 0 and cache.crops_path.stat().st_size == len(entries) * cache.crop_bytes
    assert max(rows.values()) == len(entries) - 1


def test_compacted_when_most_rows_are_dead(faceset: Path) -> None:
    entries, _, _ = cache_face_set(faceset, SIZE)
    survivors = entries[::3]
    for entry in entries:
        if entry not in survivors:
            (faceset / "faces" / entry.filename).unlink()
    _, rows, report = cache_face_set(faceset, SIZE)
    assert report.compacted and sorted(rows.values()) == list(range(len(survivors)))
    assert FaceCache(faceset, SIZE).crops_path.stat().st_size == len(survivors) * FaceCache(faceset, SIZE).crop_bytes
    pool = load_pool(faceset, SIZE)
    for i in (0, len(pool) - 1):
        np.testing.assert_array_equal(pool.crop(i), _decoded(faceset, survivors[i].filename))


def test_a_pickled_pool_carries_no_pixels(faceset: Path) -> None:
    pool = load_pool(faceset, SIZE)
    pool.crop(0)  # maps the files in this process
    data = pickle.dumps(pool)
    assert len(data) < 200 * len(pool), f"{len(data)} bytes for {len(pool)} faces: pixels were pickled"
    copy = pickle.loads(data)
    np.testing.assert_array_equal(copy.crop(5), pool.crop(5))
    assert len(data) < 40 * len(pool), f"{len(data)} bytes for {len(pool)} faces: ids and keys were pickled"
    with pytest.raises(RuntimeError, match="rows only"):
        copy.subset([0, 1])  # a worker's pool cannot be split again: it has no keys


def test_opening_a_set_forgets_deleted_crops_and_finishes_a_half_done_drop_and_restore(faceset: Path) -> None:
    """The open-time check reads the folders once (not a stat per face); what it decides is unchanged."""
    with FaceSet(faceset) as store:
        entries = store.entries()
        deleted, dropped, restored = entries[5].filename, entries[6].filename, entries[7].filename
        assert store.drop([dropped, restored], "test") == 2
        assert store.restore([restored]) == 1
    (faceset / "faces" / deleted).unlink()
    # a run killed between the database and the move: the drop's crop still in faces/, the restore's in dropped/
    (faceset / "dropped" / dropped).rename(faceset / "faces" / dropped)
    (faceset / "faces" / restored).rename(faceset / "dropped" / restored)
    with FaceSet(faceset) as store:
        assert store.pruned == 1
        names = {e.filename for e in store.entries()}
        assert deleted not in names and dropped not in names and restored in names
        assert [face.filename for face in store.dropped()] == [dropped]
    assert (faceset / "dropped" / dropped).is_file() and not (faceset / "faces" / dropped).exists()
    assert (faceset / "faces" / restored).is_file() and not (faceset / "dropped" / restored).exists()


def _png_row_filters(path: Path) -> set[int]:
    """The filter type byte of every row of an 8-bit RGB PNG (PNG spec, 9.2: 0 none ... 4 Paeth)."""
    import struct
    import zlib

    data = path.read_bytes()
    at, idat, width = 8, b"", 0
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * 3
    return {raw[k] for k in range(0, len(raw), stride)}


def test_extract_writes_crops_that_decode_fast(faceset: Path) -> None:
    """Crops are stored with the "up" filter on every row (the cache decodes them ~1.7x faster than OpenCV's
    own filter choice, Paeth on faces: bench/train_data.py, crop_png)."""
    crops = sorted((faceset / "faces").glob("*.png"))[:5]
    assert crops
    for path in crops:
        assert _png_row_filters(path) == {2}, f"{path.name}: rows not all filtered 'up'"


def test_listing_a_set_reads_a_covering_index_which_an_older_set_gets_on_open(faceset: Path) -> None:
    """Listing faces (entries, the prune at open) must not walk each wide row's landmark pages: SQLite plans
    both queries on the faces_listing index alone, and a set made before the index gets it when opened."""
    db = sqlite3.connect(faceset / "faceset.db")
    db.execute("DROP INDEX IF EXISTS faces_listing")
    db.commit()
    db.close()
    with FaceSet(faceset) as store:
        before = [(e.id, e.filename) for e in store.entries()]
    db = sqlite3.connect(faceset / "faceset.db")
    try:
        assert db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'faces_listing'").fetchone()
        plan = " ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN SELECT id, filename, dropped IS NOT NULL FROM faces"))
        assert "COVERING INDEX faces_listing" in plan, plan
    finally:
        db.close()
    with FaceSet(faceset) as store:
        assert [(e.id, e.filename) for e in store.entries()] == before and len(before) > 10
