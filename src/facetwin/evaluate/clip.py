"""Quality of a converted clip: added flicker, landmark jitter, and who the swapped faces look like.

Only the faces convert swapped are measured: the input's faces are followed along their tracks and
chosen by identity as convert chooses them (``facetwin.choice``), each paired with the output's face at
its place. Flicker is the mean frame-to-frame change inside those faces (the landmark hull of the
input's faces) in the output divided by the same in the input: 1.0 means the swap adds no flicker of
its own. Jitter is a face centre's mean second difference (pixels per frame^2) along its track as the
mesh finds it in each video, averaged over tracks by their length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder, IdentityMatch, identity_scores
from facetwin.faces.regions import FACE_OVAL
from facetwin.faces.tracks import LINK_IOU, IdentityTracker, iou
from facetwin.media import DamagedMedia, Frame, MediaSource, read_frames
from facetwin.scoring.expression import Expression, expression, eye_openness, fidelity, series

TRACKED_FACES = 16  # faces followed per frame, as convert follows them


@dataclass
class ClipReport:
    frames: int
    frames_with_face: int  # frames with a face of the person measured
    flicker_ratio: float
    jitter_input_px: float
    jitter_output_px: float
    identity: dict[str, float]
    tracks: int = 0  # appearances of the person measured (faces followed from frame to frame)
    expression: dict[str, object] = field(default_factory=dict)  # scoring.expression.Fidelity.to_json()
    expression_series: dict[str, list[float | None]] = field(default_factory=dict)  # per frame, for the plot


def _jitter(centres: list[np.ndarray]) -> float:
    if len(centres) < 3:
        return float("nan")
    return float(np.linalg.norm(np.diff(np.array(centres), n=2, axis=0), axis=1).mean())


def _mean_jitter(tracks: dict[int, list[np.ndarray]]) -> float:
    """Each track's jitter, weighted by its frames."""
    values = [(_jitter(c), len(c)) for c in tracks.values()]
    values = [(v, n) for v, n in values if np.isfinite(v)]
    return float(sum(v * n for v, n in values) / sum(n for _, n in values)) if values else float("nan")


def _area(box: tuple[float, float, float, float]) -> float:
    """Area of an (x, y, w, h) box in pixels²."""
    return box[2] * box[3]


def _hull_mask(shape: tuple[int, ...], meshes: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for points in meshes:
        cv2.fillConvexPoly(mask, cv2.convexHull(points[list(FACE_OVAL), :2].round().astype(np.int32)), 1)
    return mask.astype(bool)


def _until_damage(pairs: Iterator[tuple[Frame, Frame]]) -> Iterator[tuple[Frame, Frame]]:
    """The pairs, ending quietly where a damaged source ends (convert kept the same frames and said so)."""
    try:
        yield from pairs
    except DamagedMedia:
        return


def evaluate_clip(source: Path, converted: Path, target_centroid: np.ndarray, source_centroid: np.ndarray,
                  embedder: FaceEmbedder, choice: IdentityMatch | None = None) -> ClipReport:
    """Measure ``converted`` against ``source`` on the faces convert swapped: the faces of the input that
    ``choice`` picks (None: every face), followed along their tracks (``faces.tracks``) as convert follows
    them, each paired with the output's face at its place."""
    analyser = FaceAnalyser(max_faces=TRACKED_FACES)
    tracker = IdentityTracker()
    change_in = change_out = 0.0
    previous: tuple[np.ndarray, np.ndarray] | None = None
    centres_in: dict[int, list[np.ndarray]] = {}  # track -> face centre in each frame it was found
    centres_out: dict[int, list[np.ndarray]] = {}
    swapped: list[np.ndarray] = []
    expressions_in: list[Expression | None] = []  # per frame: the largest measured face, source and swap
    expressions_out: list[Expression | None] = []
    frames = with_face = 0
    try:
        pairs = zip(read_frames(MediaSource(source, "video")), read_frames(MediaSource(converted, "video")), strict=False)
        for frame_in, frame_out in _until_damage(pairs):
            frames += 1
            found_in = analyser.locate(frame_in.rgb)
            meshes = [points for _, points in found_in]

            def embed(indices: list[int], rgb: np.ndarray = frame_in.rgb, meshes: list[np.ndarray] = meshes) -> np.ndarray:
                return embedder.embed_in_frame(rgb, [meshes[i] for i in indices])

            who = tracker.update(frame_in.seconds, [d.box for d, _ in found_in], embed)
            chosen = [(d, points, w.track) for (d, points), w in zip(found_in, who, strict=True)
                      if choice is None or choice.matches(w.track_mean[None])[0]]  # fmt: skip
            found_out = analyser.locate(frame_out.rgb) if chosen else []
            current = (frame_in.rgb.astype(np.float32), frame_out.rgb.astype(np.float32))
            if chosen:
                with_face += 1
                inside = _hull_mask(frame_in.rgb.shape, [points for _, points, _ in chosen])
                if previous is not None:
                    change_in += float(np.abs(current[0] - previous[0])[inside].mean())
                    change_out += float(np.abs(current[1] - previous[1])[inside].mean())
            largest = max(chosen, key=lambda c: _area(c[0].box), default=None)
            expressions_in.append(expression(largest[1]) if largest is not None else None)
            expressions_out.append(None)
            for detection, points, track in chosen:
                centres_in.setdefault(track, []).append(points[:, :2].mean(axis=0))
                paired = max(found_out, key=lambda f: iou(f[0].box, detection.box), default=None)
                if paired is None or iou(paired[0].box, detection.box) < LINK_IOU:
                    continue
                if largest is not None and detection is largest[0]:
                    expressions_out[-1] = expression(paired[1])
                centres_out.setdefault(track, []).append(paired[1][:, :2].mean(axis=0))
                if frames % 5 == 1:  # every 5th frame's swapped faces are enough for the identity figures
                    swapped.append(embedder.embed_in_frame(frame_out.rgb, [paired[1]])[0])
            previous = current
    finally:
        analyser.close()
    scores = identity_scores(np.array(swapped), target_centroid, source_centroid) if swapped else None
    plotted = {f"{side}_{feature}": [None if not np.isfinite(v) else round(float(v), 4) for v in values]
               for side, faces in (("source", expressions_in), ("swap", expressions_out))
               for feature, values in (("eye_openness", eye_openness(faces)), ("mouth_open", series(faces, "mouth_open")))}  # fmt: skip
    return ClipReport(
        frames, with_face, change_out / change_in if change_in else float("nan"), _mean_jitter(centres_in),
        _mean_jitter(centres_out), {} if scores is None else scores.__dict__, len(centres_in),
        fidelity(expressions_in, expressions_out).to_json(), plotted,
    )
