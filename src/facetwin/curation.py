"""Curating a face set like faceswap's sort tool: order the faces by a measure, worst first, look at the
order on a review sheet, drop the worst ones (recoverably), and find near-duplicates.

Every measure gives each face a value and a badness; the order is worst first (ties in set order):

| ``--by`` | value | worst first |
|---|---|---|
| blur | variance of the Laplacian of the crop (stored at extract) | the blurriest |
| size | face box side in frame pixels | the smallest |
| yaw, pitch | head pose in degrees (``faces.pose`` on the mesh in the crop) | the most turned |
| identity | distance from the set's main person (``identities.group_people``: person 1) | the farthest: other people, odd faces |
| similarity | distance to the most alike face before it in the same source (thumbnails) | the most redundant |
| landmark-fit | the stored mesh against the mesh placed again on the aligned crop, in inter-ocular distances | the worst fit: a mesh not sitting on a face moves when looked at again |

Near-duplicates (``similarity``): each face's crop, its central 62.5 % in grey at 24 x 24, normalised to
zero mean and unit variance, against those of the faces kept before it in its source (the last
``DUPLICATE_WINDOW``); a face within ``NEAR_DUPLICATE`` (RMS) of one of them adds nothing. Consecutive
frames of the demo's talking heads differ by 0.03-0.05 (median), frames 0.4 s apart by 0.13-0.22.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facetwin.errors import FacetwinError
from facetwin.faces.align import eye_centres, transform_points

if TYPE_CHECKING:  # the command line reads MEASURES for its help: the face set store (PyAV, SQLite) loads on use
    from facetwin.faceset import FaceRecord, FaceSet

NEAR_DUPLICATE = 0.06  # thumbnail RMS difference (unit-variance grey) under which two faces are near-duplicates
DUPLICATE_WINDOW = 250  # a face is compared with this many faces kept before it in its source
THUMB = 24
REVIEW_COLUMNS = 10
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Ranked:
    """One face in a review order: its rank (1 = worst), crop file name and value."""

    rank: int
    filename: str
    value: float


@dataclass(frozen=True)
class Measure:
    name: str
    worst: str  # what comes first, in words
    unit: str  # how a value is printed: a format with {v}


MEASURES = {
    "blur": Measure("blur", "blurriest first", "sharp {v:.0f}"),
    "size": Measure("size", "smallest first", "{v:.0f} px"),
    "yaw": Measure("yaw", "most turned first", "yaw {v:+.0f}"),
    "pitch": Measure("pitch", "most tilted first", "pitch {v:+.0f}"),
    "identity": Measure("identity", "least like the set's main person first", "id {v:.2f}"),
    "similarity": Measure("similarity", "most redundant first", "dup {v:.3f}"),
    "landmark-fit": Measure("landmark-fit", "worst mesh fit first", "fit {v:.3f}"),
}


def thumbnail(crop: np.ndarray) -> np.ndarray:
    """The near-duplicate thumbnail of an aligned crop: (576,) float32, zero mean, unit variance."""
    size = crop.shape[0]
    margin = int(round(size * 0.1875))
    grey = cv2.cvtColor(crop[margin : size - margin, margin : size - margin], cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    return (small - small.mean()) / (small.std() + 1e-6)


def redundancy(store: FaceSet, records: Sequence[FaceRecord], progress: Progress | None = None) -> np.ndarray:
    """For each face (in ``records``' order, set order), the thumbnail distance to the most alike face kept
    before it in its source (inf for the first); a face closer than ``NEAR_DUPLICATE`` is not kept."""
    values = np.full(len(records), np.inf, np.float32)
    kept: dict[str, list[np.ndarray]] = {}
    for i, record in enumerate(records):
        thumb = thumbnail(store.load_crop(record))
        before = kept.setdefault(record.source_fingerprint, [])
        if before:
            recent = np.array(before[-DUPLICATE_WINDOW:])
            values[i] = float(np.sqrt(((recent - thumb) ** 2).mean(axis=1)).min())
        if values[i] >= NEAR_DUPLICATE:
            before.append(thumb)
        if progress is not None and (i + 1) % 100 == 0:
            progress(i + 1, len(records))
    return values


def _pose(records: Sequence[FaceRecord], axis: int) -> np.ndarray:
    from facetwin.faces.pose import head_pose

    return np.array([head_pose(transform_points(r.landmarks, r.frame_to_crop), r.crop_size)[axis] for r in records])


def _identity(store: FaceSet, records: Sequence[FaceRecord], progress: Progress | None) -> np.ndarray:
    from facetwin.identities import fill_identities, group_people

    fill_identities(store, progress=progress)
    people = group_people(store)
    fresh = {r.filename: r for r in store.records_for([r.filename for r in records])}
    centre = people[0].centre
    return np.array([np.linalg.norm(_embedding(fresh[r.filename]) - centre) for r in records])


def _embedding(record: FaceRecord) -> np.ndarray:
    if record.identity is None:
        raise FacetwinError(f"{record.filename}: no identity (it was added while the set was being measured)")
    return record.identity


def _landmark_fit(store: FaceSet, records: Sequence[FaceRecord], progress: Progress | None) -> np.ndarray:
    from facetwin.faces.detect import Detection
    from facetwin.faces.landmarks import FaceLandmarker

    landmarker = FaceLandmarker()
    values = np.full(len(records), np.nan)
    try:
        for i, record in enumerate(records):
            stored = transform_points(record.landmarks, record.frame_to_crop)
            x0, y0 = stored.min(axis=0)
            x1, y1 = stored.max(axis=0)
            box = Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), 1.0, np.zeros((6, 2), np.float32))
            again = landmarker.landmarks(store.load_crop(record), box)
            eyes = eye_centres(stored)
            scale = max(float(np.linalg.norm(eyes[0] - eyes[1])), 1e-6)
            values[i] = np.inf if again is None else float(np.linalg.norm(again[:, :2] - stored, axis=1).mean() / scale)
            if progress is not None and (i + 1) % 100 == 0:
                progress(i + 1, len(records))
    finally:
        landmarker.close()
    return values


def measure(store: FaceSet, records: Sequence[FaceRecord], by: str, progress: Progress | None = None) -> np.ndarray:
    """Each face's value for measure ``by`` (see the table above), in ``records``' order. Raises
    FacetwinError for an unknown measure."""
    if by not in MEASURES:
        raise FacetwinError(f"--by is one of {', '.join(MEASURES)}, not {by!r}")
    if by == "blur":
        return np.array([r.sharpness for r in records])
    if by == "size":
        return np.array([max(r.box[2], r.box[3]) for r in records])
    if by in ("yaw", "pitch"):
        return _pose(records, 0 if by == "yaw" else 1)
    if by == "identity":
        return _identity(store, records, progress)
    if by == "similarity":
        return redundancy(store, records, progress)
    return _landmark_fit(store, records, progress)


def badness(by: str, values: np.ndarray) -> np.ndarray:
    """Larger is worse: what the review order sorts on."""
    if by in ("blur", "size", "similarity"):
        return -values
    if by in ("yaw", "pitch"):
        return np.abs(np.nan_to_num(values, nan=180.0))
    return np.nan_to_num(values, nan=np.inf)


def review_order(store: FaceSet, by: str, progress: Progress | None = None) -> list[Ranked]:
    """Every face of the set, worst first by measure ``by`` (ties in set order)."""
    records = store.faces()
    values = measure(store, records, by, progress)
    order = np.argsort(-badness(by, values), kind="stable")
    return [Ranked(rank + 1, records[i].filename, float(values[i])) for rank, i in enumerate(order)]


def write_review(store: FaceSet, by: str, ranked: Sequence[Ranked], folder: str | os.PathLike[str], show: int = 200,
                 dropping: int = 0) -> tuple[Path | None, Path]:  # fmt: skip
    """The review of an order: ``folder/<by>.png`` (the first ``show`` faces, ten a row, each labelled with
    its rank and value; the first ``dropping`` marked with a red frame) and ``folder/<by>.tsv`` (every
    face: rank, crop file name, value), which ``ranked_from_review`` reads back. Returns both paths (the
    sheet None when the set is empty)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    table = target / f"{by}.tsv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["rank", "file", by])
        writer.writerows((r.rank, r.filename, f"{r.value:.6g}") for r in ranked)
    shown = list(ranked[:show])
    if not shown:
        return None, table
    from facetwin.sheets import face_sheet

    unit = MEASURES[by].unit
    labels = [f"{r.rank} {unit.format(v=r.value) if math.isfinite(r.value) else '-'}" for r in shown]
    sheet = face_sheet(store, [r.filename for r in shown], target / f"{by}.png", labels, columns=REVIEW_COLUMNS, tile=112)
    if dropping:
        _mark(sheet, min(dropping, len(shown)), 112, 14)
    return sheet, table


def _mark(sheet: Path, count: int, tile: int, label: int) -> None:
    image = cv2.imread(str(sheet))
    if image is None:
        raise FacetwinError(f"{sheet}: the review sheet could not be read back")
    for i in range(count):
        row, col = divmod(i, REVIEW_COLUMNS)
        y, x = row * (tile + label), col * tile
        cv2.rectangle(image, (x + 1, y + 1), (x + tile - 2, y + tile - 2), (0, 0, 255), 3)
    cv2.imwrite(str(sheet), image)


def ranked_from_review(folder: str | os.PathLike[str], by: str) -> list[Ranked]:
    """The order a review sheet showed (``folder/<by>.tsv``). Raises FacetwinError when there is none."""
    table = Path(folder) / f"{by}.tsv"
    try:
        with open(table, newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))[1:]
    except OSError as exc:
        raise FacetwinError(f"{table}: no review of --by {by} yet; run facetwin faceset sort without --drop first") from exc
    return [Ranked(int(rank), name, float(value)) for rank, name, value in rows]
