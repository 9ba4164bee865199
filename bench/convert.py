"""Convert speed on cap13_edit2.mp4 (765 frames, 400x300) and on a 1280x720 clip made from it (100
frames scaled up, tagged BT.709) with a trained model, and the jitter of the aligned face centre with
and without temporal smoothing. (``bench/convert_versus.py`` compares the speed with another checkout.)

Prints JSON. Speed: full ``convert`` runs (decode, detect, landmarks, swap, paste, H.264 encode, audio)
into fresh files, median of ``--runs``; where the time goes, from one single-threaded pass timing each
stage. Colour: for each colour mode, the colour step at the seam where the pasted face meets the frame
(see ``colour_seams``); pass the demo's ``--model-dir out/model`` for a model that has learnt a face.
Jitter: the aligned crop's centre, mapped back into the frame, followed over all frames; its
mean second difference in pixels (acceleration: what the eye sees as shaking), raw and One-Euro smoothed.

    .venv/bin/python bench/convert.py [--model-dir DIR] [--runs 3]

Without ``--model-dir`` it trains a throwaway ``original`` for 20 iterations on the demo faces first:
speed does not depend on how well the model is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from convert_versus import hd_clip  # bench/ is the script's folder

from facetwin.convert.blend import face_mask, paste
from facetwin.convert.colour import COLOUR_MODES
from facetwin.convert.run import ALIGN_SIZE, convert
from facetwin.convert.smooth import OneEuroFilter
from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import extract
from facetwin.faces.align import alignment_matrix
from facetwin.faces.analyse import FaceAnalyser
from facetwin.media import MediaSource, read_frames
from facetwin.modeldir import ModelDir
from facetwin.options import BlendOptions, ConvertOptions, ExtractOptions, RunOptions, TrainConfig
from facetwin.swapper import Swapper
from facetwin.train.trainer import train


def throwaway_model(scratch: Path) -> Path:
    clips = ensure_demo_clips()
    extract([clips.franck], scratch / "A", ExtractOptions(every=20, max_faces=1))
    extract([clips.cap12], scratch / "B", ExtractOptions(every=20, max_faces=1))
    config = TrainConfig(str(scratch / "A"), str(scratch / "B"), model="original", batch_size=8)
    train(scratch / "model", config, RunOptions(iterations=20, save_every=20, preview_every=10**6))
    return scratch / "model"


def centre_track(points_per_frame: list[np.ndarray]) -> np.ndarray:
    centre = np.array([ALIGN_SIZE / 2, ALIGN_SIZE / 2, 1.0])
    out = []
    for points in points_per_frame:
        matrix = np.vstack([alignment_matrix(points, ALIGN_SIZE), [0, 0, 1]])
        out.append((np.linalg.inv(matrix) @ centre)[:2])
    return np.array(out)


def jitter(track: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(track, n=2, axis=0), axis=1).mean())


def stages_and_jitter(video: Path, model_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    analyser = FaceAnalyser(max_faces=1)
    swapper = Swapper(model_dir)
    smoother = OneEuroFilter()
    totals = dict.fromkeys(("decode", "detect_landmarks_align", "swap", "paste"), 0.0)
    raw, smoothed = [], []
    frames = 0
    source = iter(read_frames(MediaSource(video, "video")))
    while True:
        t0 = time.perf_counter()
        frame = next(source, None)
        t1 = time.perf_counter()
        if frame is None:
            break
        faces = analyser.analyse(frame.rgb)
        t2 = time.perf_counter()
        t3 = t4 = t2
        if faces:
            points = faces[0].landmarks
            raw.append(points)
            smooth_points = smoother(points, frame.seconds).astype(np.float32)
            smoothed.append(smooth_points)
            result = swapper.swap([frame.rgb], [alignment_matrix(smooth_points, ALIGN_SIZE)], ALIGN_SIZE, "b2a")[0]
            t3 = time.perf_counter()
            paste(frame.rgb, result, smooth_points, BlendOptions())
            t4 = time.perf_counter()
        for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += value
        frames += 1
    analyser.close()
    stages = {key: round(1000 * value / frames, 2) for key, value in totals.items()}
    jitters = {"raw_px": round(jitter(centre_track(raw)), 4), "smoothed_px": round(jitter(centre_track(smoothed)), 4)}
    return stages, jitters


def colour_seams(video: Path, model_dir: Path, every: int = 5) -> dict[str, float]:
    """For each colour mode, how visible the seam is where the pasted face meets the frame: the mean
    colour difference (CIE76 delta E in LAB) between output and input in a 4 px band just inside the
    mask's full-strength edge, where the swapped face's skin fades into the frame's own. Median over
    every ``every``-th frame of the clip; lower is a less visible seam. This is what picks the default."""
    analyser = FaceAnalyser(max_faces=1)
    swapper = Swapper(model_dir)
    per_mode: dict[str, list[float]] = {mode: [] for mode in COLOUR_MODES.names()}
    band_kernel = np.ones((9, 9), np.uint8)
    back = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for frame in read_frames(MediaSource(video, "video"), every=every):
        located = analyser.locate(frame.rgb)
        if not located:
            continue
        points = located[0][1]
        result = swapper.swap([frame.rgb], [alignment_matrix(points, ALIGN_SIZE)], ALIGN_SIZE, "b2a")[0]
        height, width = frame.rgb.shape[:2]
        mask = cv2.warpAffine(face_mask(result, points, BlendOptions()), result.frame_to_model, (width, height), flags=back)
        core = (mask >= 0.99).astype(np.uint8)
        band = (core - cv2.erode(core, band_kernel)).astype(bool)
        if band.sum() < 20:
            continue
        lab_in = cv2.cvtColor(frame.rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        for mode in COLOUR_MODES:
            out = paste(frame.rgb, result, points, BlendOptions(colour=mode))
            lab_out = cv2.cvtColor(out.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            per_mode[mode].append(float(np.linalg.norm(lab_out[band] - lab_in[band], axis=1).mean()))
    analyser.close()
    return {mode: round(statistics.median(values), 3) for mode, values in per_mode.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    video = ensure_demo_clips().cap13
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model_dir = args.model_dir or throwaway_model(scratch)
        hd = hd_clip(video, scratch / "hd.mp4", 100)
        rates, rates_hd = [], []
        for run in range(args.runs):
            for source, into in ((video, rates), (hd, rates_hd)):
                start = time.perf_counter()
                report = convert(source, model_dir, scratch / f"out{run}.mp4", ConvertOptions(direction="b2a"))
                into.append(report.frames / (time.perf_counter() - start))
        stages, jitters = stages_and_jitter(video, model_dir)
        seams = colour_seams(video, model_dir)
    print(json.dumps({
        "benchmark": "convert",
        "video": video.name,
        "model": ModelDir(model_dir).read_config().model,
        "cpu_count": os.cpu_count(),
        "frames_per_s_runs": [round(r, 2) for r in rates],
        "frames_per_s_median": round(statistics.median(rates), 2),
        "frames_per_s_runs_1280x720": [round(r, 2) for r in rates_hd],
        "frames_per_s_median_1280x720": round(statistics.median(rates_hd), 2),
        "target_frames_per_s": 25,
        "stages_ms_per_frame_single_thread": stages,
        "centre_jitter_second_difference": jitters,
        "colour_seam_delta_e_median": seams,
        "colour_default": BlendOptions().colour,
        "model_iteration": int(ModelDir(model_dir).latest_checkpoint().name),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
