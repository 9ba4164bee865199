"""Cost of the identity embedding per face: facetwin's PyTorch port of dlib's ResNet against dlib's own
network, on the same faces, in the same run, alternating.

Faces: cap13's faces at every ``--every``-th frame (the mesh placed once, outside the timing). Each run
embeds all of them, one frame at a time as extract does (the chip cut by dlib's 5-point shape predictor
is part of the cost) with one engine; engines alternate run by run. Also checks that the two engines
agree (largest descriptor difference). Prints JSON: ms a face per run, medians, the speed-up.

    PYTHONPATH=src .venv/bin/python bench/identity.py [--runs 5] [--every 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from facetwin.demo_data import ensure_demo_clips
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder
from facetwin.media import read_video


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--every", type=int, default=15)
    args = parser.parse_args()

    clip = ensure_demo_clips().cap13
    analyser = FaceAnalyser(size=256, max_faces=1)
    faces = []
    for frame in read_video(clip, every=args.every):
        found = analyser.locate(frame.rgb)
        if found:
            faces.append((frame.rgb, found[0][1]))
    analyser.close()

    engines = {name: FaceEmbedder(engine=name) for name in ("torch", "dlib")}
    results: dict[str, list[float]] = {name: [] for name in engines}
    descriptors: dict[str, np.ndarray] = {}
    for _ in range(args.runs):
        for name, embedder in engines.items():
            start = time.perf_counter()
            out = [embedder.embed_in_frame(rgb, [points])[0] for rgb, points in faces]
            results[name].append(1000 * (time.perf_counter() - start) / len(faces))
            descriptors[name] = np.array(out)
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(json.dumps({
        "faces": len(faces), "ms_per_face": {k: [round(v, 2) for v in vs] for k, vs in results.items()},
        "median_ms_per_face": {k: round(v, 2) for k, v in medians.items()},
        "torch_speedup": round(medians["dlib"] / medians["torch"], 2),
        "largest_descriptor_difference": float(np.abs(descriptors["torch"] - descriptors["dlib"]).max()),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
