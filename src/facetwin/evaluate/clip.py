"""Quality of a converted clip: added flicker, landmark jitter, and who the swapped faces look like.

Flicker is the mean frame-to-frame change inside the face (the landmark hull of the input's face) in
the output divided by the same in the input: 1.0 means the swap adds no flicker of its own. Jitter is
the face centre's mean second difference (pixels per frame^2) as the mesh finds it in each video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetwin.faces.align import transform_points
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder, identity_scores
from facetwin.faces.regions import FACE_OVAL
from facetwin.media import DamagedMedia, Frame, MediaSource, read_frames
from facetwin.scoring.expression import Expression, expression, fidelity, series


@dataclass
class ClipReport:
    frames: int
    frames_with_face: int
    flicker_ratio: float
    jitter_input_px: float
    jitter_output_px: float
    identity: dict[str, float]
    expression: dict[str, object] = field(default_factory=dict)  # scoring.expression.Fidelity.to_json()
    expression_series: dict[str, list[float | None]] = field(default_factory=dict)  # per frame, for the plot


def _jitter(centres: list[np.ndarray | None]) -> float:
    track = [c for c in centres if c is not None]
    if len(track) < 3:
        return float("nan")
    return float(np.linalg.norm(np.diff(np.array(track), n=2, axis=0), axis=1).mean())


def _until_damage(pairs: Iterator[tuple[Frame, Frame]]) -> Iterator[tuple[Frame, Frame]]:
    """The pairs, ending quietly where a damaged source ends (convert kept the same frames and said so)."""
    try:
        yield from pairs
    except DamagedMedia:
        return


def evaluate_clip(source: Path, converted: Path, target_centroid: np.ndarray, source_centroid: np.ndarray,
                  embedder: FaceEmbedder) -> ClipReport:
    analyser = FaceAnalyser(max_faces=1)
    change_in = change_out = 0.0
    previous: tuple[np.ndarray, np.ndarray] | None = None
    centres_in: list[np.ndarray | None] = []
    centres_out: list[np.ndarray | None] = []
    crops, boxes = [], []
    expressions_in: list[Expression | None] = []
    expressions_out: list[Expression | None] = []
    frames = with_face = 0
    try:
        pairs = zip(read_frames(MediaSource(source, "video")), read_frames(MediaSource(converted, "video")), strict=False)
        for frame_in, frame_out in _until_damage(pairs):
            frames += 1
            found_in, found_out = analyser.analyse(frame_in.rgb), analyser.analyse(frame_out.rgb)
            centres_in.append(found_in[0].landmarks[:, :2].mean(axis=0) if found_in else None)
            centres_out.append(found_out[0].landmarks[:, :2].mean(axis=0) if found_out else None)
            expressions_in.append(expression(found_in[0].landmarks) if found_in else None)
            expressions_out.append(expression(found_out[0].landmarks) if found_out else None)
            current = (frame_in.rgb.astype(np.float32), frame_out.rgb.astype(np.float32))
            if found_in:
                with_face += 1
                mask = np.zeros(frame_in.rgb.shape[:2], np.uint8)
                cv2.fillConvexPoly(mask, cv2.convexHull(found_in[0].landmarks[list(FACE_OVAL), :2].round().astype(np.int32)), 1)
                if previous is not None:
                    inside = mask.astype(bool)
                    change_in += float(np.abs(current[0] - previous[0])[inside].mean())
                    change_out += float(np.abs(current[1] - previous[1])[inside].mean())
            if found_out and frames % 5 == 1:  # every 5th swapped face is enough for the identity figures
                face = found_out[0]
                points = transform_points(face.landmarks, face.aligned.frame_to_crop)
                crops.append(face.aligned.crop)
                boxes.append((float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max())))
            previous = current
    finally:
        analyser.close()
    scores = identity_scores(embedder.embed(crops, boxes), target_centroid, source_centroid) if crops else None
    plotted = {f"{side}_{feature}": [None if not np.isfinite(v) else round(float(v), 4) for v in series(faces, feature)]
               for side, faces in (("source", expressions_in), ("swap", expressions_out)) for feature in ("eyes", "mouth_open")}  # fmt: skip
    return ClipReport(
        frames, with_face, change_out / change_in if change_in else float("nan"), _jitter(centres_in), _jitter(centres_out),
        {} if scores is None else scores.__dict__, fidelity(expressions_in, expressions_out).to_json(), plotted,
    )
