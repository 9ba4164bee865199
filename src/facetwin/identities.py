"""Who is in a face set: identities back-filled, faces grouped by person, a contact sheet per person.

``fill_identities`` gives every face of a set that has none (a set made before format 3, or faces added
by an older facetwin) its identity embedding, the way extract does: faces are followed along their
tracks within each source and the embedding is computed on the first face of a track and once a second
of video after, copied in between (``faces.tracks``). Committed one source at a time, so an interrupted
fill resumes.

``group_people`` sorts the faces into people. The units are tracks (one person by construction: a track
whose identity jumps is split), each the mean of its computed embeddings and weighing its face count.
Units are taken largest first and each joins the nearest person whose centre is within
``GROUP_DISTANCE``, or starts a new one; then every unit is given to its nearest centre until nothing
moves, and people whose centres are within ``GROUP_DISTANCE`` are merged. Comparing with centres, not
single faces, keeps one odd face from chaining two people together. On the demo clips the centres of
one person's tracks lie within 0.35 of the person's centre and the two people's centres 0.8 apart
(``bench/identity.py``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import FacetwinError
from facetwin.faces.align import transform_points
from facetwin.faces.identity import FaceEmbedder
from facetwin.faces.tracks import IdentityTracker
from facetwin.faceset import FaceSet, IdentityRow
from facetwin.media import write_image
from facetwin.options import PeopleOptions, default_of
from facetwin.sheets import face_sheet, grid

GROUP_DISTANCE: float = default_of(PeopleOptions, "distance")  # dlib's same-person bound between two faces is 0.6
SHEET_FACES = 48  # faces on each person's contact sheet, sampled evenly
Progress = Callable[[int, int], None]  # (faces done, faces to do)


def fill_identities(store: FaceSet, embedder: FaceEmbedder | None = None, progress: Progress | None = None) -> int:
    """Compute the identity of every face of ``store`` that has none; returns how many faces were filled."""
    missing = [row for row in store.identity_rows() if row.identity is None]
    if not missing:
        return 0
    embedder = embedder or FaceEmbedder()
    first_track, done = store.next_track(), 0
    for _, source_rows in groupby(missing, key=lambda r: r.source_id):
        tracker = IdentityTracker(first_track)
        updates: list[tuple[int, np.ndarray, bool, int]] = []
        for _, frame_rows in groupby(source_rows, key=lambda r: r.frame_index):
            faces = list(frame_rows)

            def embed(indices: list[int], faces: list[IdentityRow] = faces) -> np.ndarray:
                records = store.records_for([faces[i].filename for i in indices])
                if len(records) != len(indices):
                    raise FacetwinError(f"{store.root}: faces went missing while their identities were computed")
                crops = [store.load_crop(r) for r in records]
                return embedder.embed_crops(crops, [transform_points(r.landmarks, r.frame_to_crop) for r in records])

            who = tracker.update(faces[0].seconds, [r.box for r in faces], embed)
            updates += [(row.id, w.embedding, w.exact, w.track) for row, w in zip(faces, who, strict=True)]
        store.set_identities(updates)
        first_track = tracker.next_track
        done += len(updates)
        if progress is not None:
            progress(done, len(missing))
    return len(missing)


@dataclass
class Person:
    """One person of a face set: the number ``facetwin faceset identities`` shows (1 has the most faces),
    their faces (ids and crop file names, in set order) and the centre of their identity (128 float32)."""

    number: int
    face_ids: list[int]
    filenames: list[str]
    centre: np.ndarray = field(repr=False)
    sources: dict[str, int]  # source path -> faces of this person in it


def _units(rows: Sequence[IdentityRow]) -> tuple[list[list[IdentityRow]], np.ndarray, np.ndarray]:
    """Faces grouped by track (faces without one stand alone), each track's mean computed embedding and
    face count."""
    by_track: dict[object, list[IdentityRow]] = {}
    for row in rows:
        by_track.setdefault(row.track if row.track is not None else ("face", row.id), []).append(row)
    units = list(by_track.values())
    means = []
    for unit in units:
        computed = [r.identity for r in unit if r.identity is not None and r.identity_exact] or [
            r.identity for r in unit if r.identity is not None]  # fmt: skip
        means.append(np.mean(computed, axis=0))
    return units, np.array(means, np.float32).reshape(len(units), -1), np.array([len(u) for u in units], np.float64)


def _centres(labels: np.ndarray, means: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    sums = np.zeros((count, means.shape[1]))
    np.add.at(sums, labels, means * weights[:, None])
    totals = np.bincount(labels, weights, minlength=count)
    return (sums / np.maximum(totals, 1e-9)[:, None]).astype(np.float32)


def cluster(means: np.ndarray, weights: np.ndarray, distance: float = GROUP_DISTANCE) -> np.ndarray:
    """Person labels (0 = the heaviest person) of units with these mean embeddings (N x 128) and weights
    (N,): leader clustering, heaviest unit first, refined by nearest-centre passes and merged below
    ``distance`` (see the module docstring)."""
    if len(means) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-weights, kind="stable")
    labels = np.full(len(means), -1)
    centres: list[np.ndarray] = []
    totals: list[float] = []
    for i in order:
        if centres:
            gaps = np.linalg.norm(np.array(centres) - means[i], axis=1)
            best = int(gaps.argmin())
            if gaps[best] < distance:
                labels[i] = best
                totals[best] += weights[i]
                centres[best] = centres[best] + (means[i] - centres[best]) * weights[i] / totals[best]
                continue
        labels[i] = len(centres)
        centres.append(means[i].astype(np.float64))
        totals.append(float(weights[i]))
    for _ in range(20):
        labels = _relabel(labels)
        count = int(labels.max()) + 1
        centre = _centres(labels, means, weights, count)
        nearest = np.linalg.norm(means[:, None] - centre[None], axis=2).argmin(axis=1)
        gaps = np.linalg.norm(centre[:, None] - centre[None], axis=2) + np.eye(count) * 1e9
        if gaps.min() < distance:  # two people's centres ran together: one person
            a, b = np.unravel_index(gaps.argmin(), gaps.shape)
            nearest[nearest == max(a, b)] = min(a, b)
        if np.array_equal(nearest, labels):
            break
        labels = nearest
    labels = _relabel(labels)
    weight = np.bincount(labels, weights)
    rank = np.argsort(-weight, kind="stable")
    return np.argsort(rank)[labels]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0.. without gaps, in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]


def group_people(store: FaceSet, distance: float = GROUP_DISTANCE) -> list[Person]:
    """The people of ``store`` (its identities must be filled: ``fill_identities``), most faces first."""
    rows = [row for row in store.identity_rows() if row.identity is not None]
    if not rows:
        return []
    units, means, weights = _units(rows)
    labels = cluster(means, weights, distance)
    paths = store.source_paths()
    people = []
    for number in range(int(labels.max()) + 1):
        members = sorted((row for unit, label in zip(units, labels, strict=True) if label == number for row in unit),
                         key=lambda r: (r.source_id, r.frame_index, r.filename))  # fmt: skip
        chosen = labels == number
        centre = (means[chosen] * weights[chosen, None]).sum(axis=0) / weights[chosen].sum()
        sources = Counter(paths[row.source_id] for row in members)
        people.append(Person(number + 1, [r.id for r in members], [r.filename for r in members],
                             centre.astype(np.float32), dict(sources)))  # fmt: skip
    return people


def save_people(store: FaceSet, people: Sequence[Person]) -> None:
    """Remember which person each face is, for ``drop_people``."""
    store.save_groups({face_id: person.number for person in people for face_id in person.face_ids})


def drop_people(store: FaceSet, numbers: Sequence[int], keep: bool = False) -> int:
    """Drop (recoverably) the faces of the people with these numbers, as ``save_people`` last stored them
    (with ``keep``: every other person's faces). Returns how many faces were dropped. Raises FacetwinError
    for an unknown number, or when faces were added since the people were last grouped."""
    groups = store.groups()
    rows = store.identity_rows()
    if not groups or any(row.id not in groups for row in rows):
        raise FacetwinError(f"{store.root}: faces were added since the people were grouped (or they never were);"
                            f" run facetwin faceset identities {store.root} and look at the sheets first")
    known = set(groups.values())
    unknown = sorted(set(numbers) - known)
    if unknown:
        raise FacetwinError(f"{store.root}: no person {', '.join(map(str, unknown))} (there are {', '.join(map(str, sorted(known)))})")
    chosen = set(numbers)
    names = [row.filename for row in rows if (groups[row.id] in chosen) != keep]
    reason = f"identities: {'not ' if keep else ''}person {', '.join(map(str, sorted(chosen)))}"
    return store.drop(names, reason)


def person_sheets(store: FaceSet, people: Sequence[Person], folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``folder/person_<n>.png`` (up to ``SHEET_FACES`` faces of person n, evenly sampled) for each
    person and ``folder/people.png`` (one row of eight faces per person); returns their paths, people.png
    first. Sheets of people no longer in the set are removed."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("person_*.png"):
        old.unlink()
    written = []
    rows = []
    for person in people:
        picks = np.unique(np.linspace(0, len(person.filenames) - 1, min(SHEET_FACES, len(person.filenames))).round().astype(int))
        names = [person.filenames[i] for i in picks]
        written.append(face_sheet(store, names, target / f"person_{person.number}.png"))
        row_names = [person.filenames[i] for i in np.unique(np.linspace(0, len(person.filenames) - 1, min(8, len(person.filenames))).round().astype(int))]
        images = [store.load_crop(r) for r in store.records_for(row_names)]
        header = np.full((20, 8 * 96, 3), 24, np.uint8)
        where = ", ".join(f"{Path(source).name} {count}" for source, count in person.sources.items())
        text = f"person {person.number}: {len(person.filenames)} faces ({where})"
        cv2.putText(header, text[:120], (4, 15), cv2.FONT_HERSHEY_PLAIN, 1.0, (230, 230, 230))
        rows += [header, grid(images, columns=8, tile=96)]
    overview = write_image(target / "people.png", np.vstack(rows)) if rows else None
    return ([overview] if overview is not None else []) + written


def training_centre(faceset: str | os.PathLike[str], seed: int, holdout: float, embedder: FaceEmbedder | None = None) -> np.ndarray:
    """Who a model's side is: the centre (128 float32) of the main person among the face set's training
    faces (the split of ``facetwin.split`` with this seed and held-out share), its identities filled first.
    Raises FacetwinError for a missing face set or one without faces."""
    from facetwin.split import FaceKey, split

    with FaceSet(faceset) as store:
        fill_identities(store, embedder)
        rows = [row for row in store.identity_rows() if row.identity is not None]
    if not rows:
        raise FacetwinError(f"{faceset}: the face set holds no faces")
    train = split([FaceKey(r.source_fingerprint, r.seconds) for r in rows], seed, holdout).train
    chosen = [rows[i] for i in train] or rows
    units, means, weights = _units(chosen)
    labels = cluster(means, weights)
    main = labels == 0
    return ((means[main] * weights[main, None]).sum(axis=0) / weights[main].sum()).astype(np.float32)
