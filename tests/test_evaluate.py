"""`facetwin evaluate`: each metric on known cases, identity on real demo faces, a model trained longer
rebuilding held-out faces better, the report, and the metrics logged during training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import cut_clip, run_cli
from facetwin.demo_data import DemoClips
from facetwin.faces.analyse import FaceAnalyser
from facetwin.media import MediaSource, read_frames
from facetwin.modeldir import ModelDir
from facetwin.options import RunOptions, TrainConfig
from facetwin.scoring.held_out import HeldOutEvaluator
from facetwin.scoring.metrics import head_pose, landmark_error, masked_l1, masked_psnr, masked_ssim, pose_error
from facetwin.swapper import Swapper
from facetwin.train.trainer import train


@pytest.fixture(scope="module")
def real_faces(clips: DemoClips) -> list[tuple[np.ndarray, np.ndarray]]:
    analyser = FaceAnalyser(max_faces=1)
    found = []
    for frame in read_frames(MediaSource(clips.franck, "video"), every=600):
        faces = analyser.analyse(frame.rgb)
        if faces:
            found.append((frame.rgb, faces[0].landmarks))
    analyser.close()
    return found


def test_metrics_on_known_cases(real_faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    rgb, points = real_faces[0]
    image = rgb.astype(np.float32) / 255
    mask = np.zeros(image.shape[:2], np.float32)
    mask[50:200, 100:250] = 1
    assert masked_ssim(image, image, mask) == pytest.approx(1.0, abs=1e-5)
    assert masked_l1(image, image, mask) == 0.0 and masked_psnr(image, image, mask) == 100.0
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.05, image.shape).astype(np.float32), 0, 1)
    assert masked_ssim(noisy, image, mask) < 0.9 and 20 < masked_psnr(noisy, image, mask) < 30
    outside_only = image.copy()
    outside_only[mask == 0] = 0  # changes outside the mask do not count
    assert masked_l1(outside_only, image, mask) == 0.0
    assert landmark_error(points, points) == 0.0 and pose_error(points, points, 512) == 0.0
    shifted = points.copy()
    shifted[:, 0] += 0.1 * np.linalg.norm(points[468, :2] - points[473, :2])
    assert landmark_error(shifted, points) == pytest.approx(0.1, rel=1e-3)
    for _, face in real_faces:  # Franck talks to the camera: a plausible head pose, every time
        yaw, pitch, roll = head_pose(face, 512)
        assert abs(yaw) < 45 and abs(pitch) < 30 and abs(roll) < 25


@pytest.fixture(scope="module")
def barely_trained(franck_set, cap12_set, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 steps (against the shared model's 30), with the quality metrics logged at steps 2 and 4."""
    folder = tmp_path_factory.mktemp("barely") / "model"
    config = TrainConfig(str(franck_set[0]), str(cap12_set[0]), model="original", batch_size=8, seed=1)
    train(folder, config, RunOptions(iterations=4, save_every=4, preview_every=10**6, evaluate_every=2))
    return folder


def test_real_faces_are_retrieved_and_reconstruction_improves(model_dir: Path, barely_trained: Path) -> None:
    scored = []
    for folder in (barely_trained, model_dir):
        swapper = Swapper(folder)
        if not scored:  # both models share the face sets and the split: one evaluator serves both
            evaluator = HeldOutEvaluator.for_model_dir(ModelDir(folder), swapper.spec, limit=32, identity=True)
        scored.append(evaluator.evaluate(swapper.model, swapper.device, swapper.dtype, swapper.model_id, swapper.iteration))
    barely, trained = scored
    for report in (barely, trained):
        for side in ("a", "b"):
            real = report.identity[f"real_{side}"]
            assert real["retrieval"] >= 0.95, "real faces of each person are nearer their own centroid"
            assert real["to_target"] < 0.6 < real["to_source"]
    for side in ("a", "b"):
        assert trained.reconstruction[side]["l1"] < barely.reconstruction[side]["l1"]
        assert trained.reconstruction[side]["ssim"] > barely.reconstruction[side]["ssim"]
        assert trained.reconstruction[side]["psnr"] > barely.reconstruction[side]["psnr"]


def test_evaluate_command_writes_report(model_dir: Path, tmp_path: Path) -> None:
    result = run_cli("evaluate", "-m", model_dir, "-o", tmp_path / "report", "--faces", "12", timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    held = metrics["held_out"]
    assert set(held["identity"]) == {"real_a", "real_b", "a2b", "b2a"}
    for swap in ("a2b", "b2a"):
        expression = held["expression"][swap]
        assert 0 <= expression["mesh_not_found"] <= 1
        if expression["mesh_not_found"] < 1:  # a 30-step model's swaps are often too blurry for the mesh
            assert 0 <= expression["landmark_error_iod"] < 1 and 0 <= expression["pose_error_deg"] < 90
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3, "plots are inlined: the page stands alone"
    assert "A→B" in result.stdout and f"report: {tmp_path / 'report' / 'report.html'}" in result.stdout.replace("\n", "")


def test_evaluate_every_logs_and_plots_quality(barely_trained: Path) -> None:
    import cv2

    from facetwin.curves import plot_losses

    rows = (barely_trained / "quality.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,ssim_a") and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert all(0 < float(v) < 2 for r in rows[1:] for v in r.split(",")[5:7]), "identity distances are real numbers"
    picture = cv2.imread(str(plot_losses(barely_trained, barely_trained / "plot.png")))
    assert picture.shape[1] >= 1700, "a third panel beside the losses: the quality curve"


def test_evaluate_video_converts_with_restore_and_measures_it(model_dir: Path, clips: DemoClips, tmp_path: Path) -> None:
    """``evaluate --video CLIP --restore eyes``: the clip is converted with the source's eyes restored, so
    the report counts cap13's blink (frame 98, inside this cut of frames 60-159) as reproduced, and says
    which restore it measured."""
    clip = cut_clip(clips.cap13, tmp_path / "blink.mp4", seconds=4.0, start=60 / 25)
    result = run_cli("evaluate", "-m", model_dir, "-o", tmp_path / "report", "--faces", "8", "--video", clip,
                     "--direction", "b2a", "--restore", "eyes", timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    measured = json.loads((tmp_path / "report" / "metrics.json").read_text())["clip"]
    assert measured["restore"] == "eyes"
    follow = measured["expression"]
    assert follow["source_blinks"] == follow["reproduced_blinks"] == 1, follow
    said = result.stdout.replace("\n", " ")
    assert "1 face track measured" in said
    assert 0 < measured["restored_faces"] < measured["swapped_faces"], "restore acts on some faces, not all"
    assert (f"(--restore eyes: the source's own eyes in {measured['restored_faces']} of {measured['swapped_faces']} swapped faces)"
            in said), said
    who = measured["identity"]
    assert f"identity of the swapped faces ({who['count']} sampled): {who['retrieval']:.0%} nearer the target" in said, said


def test_evaluate_video_the_wrong_way_says_so(model_dir: Path, clips: DemoClips, tmp_path: Path) -> None:
    """cap13 shows B; measured as an a2b clip no face is A's, and evaluate says to try --direction b2a."""
    clip = cut_clip(clips.cap13, tmp_path / "b.mp4", seconds=1.0)
    result = run_cli("evaluate", "-m", model_dir, "-o", tmp_path / "report", "--faces", "8", "--video", clip, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["clip"]["tracks"] == 0
    assert "if it shows B, evaluate with --direction b2a" in result.stderr.replace("\n", " "), result.stderr
