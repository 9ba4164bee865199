"""The held-out split: a pure function of the seed and each face's (source, time), in whole one-second
segments with a guard second around them, stable when faces are deleted or sources added."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facetwin.errors import FacetwinError
from facetwin.extract import extract
from facetwin.facepool import load_pool, split_pool
from facetwin.faceset import FaceSet
from facetwin.options import ExtractOptions
from facetwin.split import GUARD_SECONDS, FaceKey, Role, split

SHARE = 0.2  # a larger share than the default, so that six seconds hold several held-out segments


def _roles(faceset: Path, seed: int = 0, share: float = SHARE) -> dict[int, Role]:
    pool = load_pool(faceset, 64)
    parts = split(pool.keys, seed, share)
    roles = {}
    for role, positions in ((Role.TRAIN, parts.train), (Role.HELD_OUT, parts.held_out), (Role.GUARD, parts.guard)):
        roles.update({pool.ids[i]: role for i in positions})
    return roles


def test_deleting_a_crop_and_adding_a_source_moves_no_other_face(small_sets: dict[str, Path],
                                                                 short_clips: dict[str, Path], tmp_path: Path) -> None:
    faceset = tmp_path / "b"
    shutil.copytree(small_sets["b"], faceset)
    # a seed whose share draws a held-out second of this set: a set that draws none holds out its lowest
    # draw instead (split's fallback), and a source added later that draws one takes its place
    keys = load_pool(faceset, 64).keys
    seed = next(s for s in range(100) if split(keys, s, SHARE).note is None)
    before = _roles(faceset, seed)
    assert set(before.values()) == {Role.TRAIN, Role.HELD_OUT, Role.GUARD}, "six seconds at 20 % hold all three roles"
    with FaceSet(faceset) as store:
        records = store.faces()
    held = next(r for r in records if before[r.id] is Role.HELD_OUT)
    trained = next(r for r in records if before[r.id] is Role.TRAIN)
    for record in (held, trained):  # the README's way to curate: delete the crop
        (faceset / "faces" / record.filename).unlink()
    report = extract([short_clips["b2"]], faceset, ExtractOptions(every=2, max_faces=1))
    assert report.exit_code == 0
    after = _roles(faceset, seed)
    assert held.id not in after and trained.id not in after
    assert len(after) > len(before) - 2, "the new source added faces"
    moved = {face: (role, after[face]) for face, role in before.items() if face in after and after[face] is not role}
    assert not moved, f"faces changed side: {moved}"


def test_no_held_out_frame_within_a_second_of_a_training_frame(small_sets: dict[str, Path]) -> None:
    for faceset in small_sets.values():
        pool = load_pool(faceset, 64)
        parts = split(pool.keys, 0, SHARE)
        assert parts.held_out and parts.train
        for h in parts.held_out:
            for t in parts.train:
                if pool.keys[h].source == pool.keys[t].source:
                    gap = abs(pool.keys[h].seconds - pool.keys[t].seconds)
                    assert gap >= GUARD_SECONDS, f"held-out face at {pool.keys[h].seconds:.2f} s, training face at {pool.keys[t].seconds:.2f} s"
        held_segments = {pool.keys[i].segment for i in parts.held_out}
        for i, key in enumerate(pool.keys):  # held out by whole segments: every face of a held-out second
            assert (key.segment in held_segments) == (i in parts.held_out)


def test_the_seed_moves_the_split_and_the_share_is_kept() -> None:
    keys = [FaceKey(f"video{v}", t / 25) for v in range(4) for t in range(25 * 60)]  # four minutes of 25 fps
    first, again, other = split(keys, 0, 0.05), split(keys, 0, 0.05), split(keys, 1, 0.05)
    assert first == again and first.held_out != other.held_out
    share = len(first.held_out) / len(keys)
    assert 0.02 < share < 0.09, share
    assert len(first.guard) <= 2.2 * len(first.held_out), "the guard costs about two seconds per held-out second"


def test_small_sets_still_hold_one_segment_out_and_single_moments_say_why(tmp_path: Path) -> None:
    keys = [FaceKey("clip", t / 25) for t in range(75)]  # three seconds
    parts = split(keys, 0, 0.0001)
    assert parts.held_out and parts.note and "lowest draw" in parts.note
    assert split([FaceKey("still", 0.0)] * 3, 0, 0.05).held_out == []


def test_split_pool_refuses_a_set_that_cannot_be_split(small_sets: dict[str, Path]) -> None:
    pool = load_pool(small_sets["a"], 64).subset(list(range(10)))  # 10 faces, every 2nd frame: 0.8 s of video
    with pytest.raises(FacetwinError, match="too little footage"):
        split_pool(pool, 0, 0.05)


def test_evenly_spread_scoring_faces() -> None:
    from facetwin.scoring.held_out import evenly

    assert evenly(60, 10**6) == list(range(60)), "asking for more faces than there are scores them all"
    assert evenly(100, 5) == [0, 25, 50, 74, 99] and evenly(3, 1) == [0]
