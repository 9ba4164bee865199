"""Training on the real demo faces: shapes, data, resume, SIGKILL, NaN, Ctrl-C, DDP, and that it learns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import run_cli
from facetwin.checkpoint import complete_checkpoints as checkpoints_in
from facetwin.errors import FacetwinError
from facetwin.facepool import load_pool, split_pool
from facetwin.models.registry import build_model
from facetwin.options import AugmentSettings, RunOptions, TrainConfig
from facetwin.train.augment import colour_jitter
from facetwin.train.data import PairDataset, StepSampler, collate_pairs, unpack_pairs
from facetwin.train.trainer import NonFiniteLoss, train


@pytest.fixture(scope="module")
def config(franck_set, cap12_set) -> TrainConfig:
    return TrainConfig(str(franck_set[0]), str(cap12_set[0]), model="original", batch_size=4, seed=3)


def complete_checkpoints(model_dir: Path) -> list[Path]:
    return checkpoints_in(model_dir / "checkpoints")


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(complete_checkpoints(model_dir)[-1] / "model.safetensors")


def test_original_is_the_2017_architecture() -> None:
    model = build_model("original")
    assert sum(p.numel() for p in model.parameters()) == 82_062_470
    assert sum(p.numel() for p in model.encoder.parameters()) == 69_662_976
    x = torch.rand(2, 3, 64, 64)
    code = model.encoder(x)
    assert code.shape == (2, 512, 8, 8)
    face, mask = model(x, "a")
    assert face.shape == (2, 3, 64, 64) and mask is None
    assert 0 <= float(face.detach().min()) and float(face.detach().max()) <= 1
    assert model.learning_rate == 5e-5 and model.betas == (0.5, 0.999)


def test_gemm_bottleneck_convolutions_equal_the_ordinary_kernel(config: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 4x4 bottleneck convolutions run as one GEMM on the CPU (models.blocks.Conv2d): on real faces
    the model's outputs and every parameter's gradient must equal those of PyTorch's own kernel."""
    from facetwin.models import blocks
    from facetwin.models.base import PairForward

    spec = build_model("original").spec
    pool = load_pool(Path(config.faceset_a), 103)
    faces = torch.from_numpy(np.stack([pool.crop(i) for i in range(8)]).astype(np.float32) / 255).permute(0, 3, 1, 2)
    faces = torch.nn.functional.interpolate(faces, size=spec.size, mode="area")

    def run(gemm_positions: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        monkeypatch.setattr(blocks, "GEMM_MAX_POSITIONS", gemm_positions)
        torch.manual_seed(0)
        model = build_model("original")
        outputs = PairForward(model)(faces[:4], faces[4:])
        # a smooth loss: L1's gradient is a sign, which flips where the two kernels' outputs differ by rounding
        loss = sum(((out[0] - target) ** 2).mean() for out, target in zip(outputs.values(), (faces[:4], faces[4:])))
        loss.backward()
        return outputs["a"][0].detach(), {name: p.grad for name, p in model.named_parameters()}

    shipped = blocks.GEMM_MAX_POSITIONS
    assert shipped >= 16, "the 4x4 maps of original take the GEMM path"
    gemm_face, gemm_grads = run(shipped)
    plain_face, plain_grads = run(0)
    torch.testing.assert_close(gemm_face, plain_face, rtol=1e-4, atol=1e-5)
    largest = max(float(g.abs().max()) for g in plain_grads.values())
    for name, grad in plain_grads.items():
        # atol on the model's scale too: a layer whose gradient is small by cancellation (decoder b at
        # initialisation: ~3e-7, against ~2e-2 elsewhere) differs by the float32 rounding of its larger terms
        atol = max(1e-3 * float(grad.abs().max()), 1e-4 * largest)
        torch.testing.assert_close(gemm_grads[name], grad, rtol=1e-3, atol=atol, msg=name)


def test_lightweight_is_original_at_half_width() -> None:
    model, original = build_model("lightweight"), build_model("original")
    assert sum(p.numel() for p in model.parameters()) == 20_526_662
    def widths(m: torch.nn.Module) -> list[int]:
        return [c.out_channels for c in m.modules() if isinstance(c, torch.nn.Conv2d)]

    assert widths(model) == [w if w == 3 else w // 2 for w in widths(original)]
    face, mask = model(torch.rand(2, 3, 64, 64), "a")
    assert face.shape == (2, 3, 64, 64) and mask is None
    from facetwin.models.losses import face_loss, l1_loss

    assert model.criterion is face_loss and original.criterion is l1_loss


def test_masked256_is_masked128_one_halving_deeper() -> None:
    model, smaller = build_model("masked256"), build_model("masked128")
    assert sum(p.numel() for p in model.parameters()) == 82_489_672
    assert model.spec.size == 256 and model.spec.coverage == smaller.spec.coverage and model.spec.has_mask
    x = torch.rand(1, 3, 256, 256)
    assert model.encoder(x).shape == (1, 512, 8, 8), "six halvings to the 4x4 bottleneck, one upscale"
    face, mask = model(x, "a")
    assert face.shape == (1, 3, 256, 256) and mask is not None and mask.shape == (1, 1, 256, 256)
    assert model.criterion is smaller.criterion and model.betas == smaller.betas


def test_masked128_predicts_a_face_and_a_mask() -> None:
    model = build_model("masked128")
    assert sum(p.numel() for p in model.parameters()) == 20_610_888
    x = torch.rand(2, 3, 128, 128)
    assert model.encoder(x).shape == (2, 256, 8, 8), "five halvings to the 4x4 bottleneck, one upscale"
    face, mask = model(x, "b")
    assert face.shape == (2, 3, 128, 128) and mask is not None and mask.shape == (2, 1, 128, 128)
    with pytest.raises(FacetwinError, match="unknown model"):
        build_model("nope")


def test_ssim_blur_equals_the_2d_gaussian_convolution(config: TrainConfig) -> None:
    """The loss's SSIM blurs with two banded matrix products (losses.gaussian_blur); on real faces, and on
    a non-square image, that must equal the textbook 11x11 Gaussian window convolved with reflect padding."""
    import torch.nn.functional as F

    from facetwin.models.losses import gaussian_blur

    pool = load_pool(Path(config.faceset_a), 128)
    faces = torch.from_numpy(np.stack([pool.crop(i) for i in range(4)]).astype(np.float32) / 255).permute(0, 3, 1, 2)
    coords = torch.arange(11, dtype=torch.float32) - 5
    line = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (line[:, None] * line[None, :] / line.sum() ** 2).expand(3, 1, 11, 11)
    for images in (faces, faces[:, :, 10:90, :]):
        expected = F.conv2d(F.pad(images, (5, 5, 5, 5), mode="reflect"), window, groups=3)
        torch.testing.assert_close(gaussian_blur(images), expected, rtol=0, atol=1e-5)
    assert float((gaussian_blur(faces) - faces).abs().mean()) > 0.005, "a blur changes a real face"


def test_samples_are_deterministic_and_targets_unwarped(config: TrainConfig) -> None:
    spec = build_model("original").spec
    pool = load_pool(Path(config.faceset_a), 103)
    train_pool = split_pool(pool, seed=3, holdout=0.05).train
    pools = {"a": train_pool, "b": train_pool}
    warped = PairDataset(pools, spec, seed=3, settings=AugmentSettings())
    still = PairDataset(pools, spec, seed=3, settings=AugmentSettings(warp_scale=0.0))
    first, again, other = warped[17], warped[17], warped[18]
    for key in first:
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["a_target"], other["a_target"])
    unwarped = still[17]
    assert torch.equal(first["a_target"], unwarped["a_target"]), "the target must not depend on the warp"
    assert torch.allclose(unwarped["a_source"], unwarped["a_target"], atol=1e-5)
    difference = (first["a_source"] - first["a_target"]).abs().mean()
    assert 0.01 < difference < 0.2, "the warp must distort the input, but not beyond recognition"
    assert first["a_mask"].shape == (1, 64, 64) and 0.2 < first["a_mask"].mean() < 0.9
    features = (first["a_priority"] > 0).float()
    assert (features <= first["a_mask"] + 1e-6).float().mean() > 0.97, "eyes and mouth lie in the face"
    assert set(first["a_priority"].unique().tolist()) == {0.0, 2.0}, "eyes and mouth weigh 3 by default: 1 + 2"
    eyes = PairDataset(pools, spec, seed=3, settings=AugmentSettings(), multipliers=(10.0, 1.0))[17]["a_priority"]
    mouth = PairDataset(pools, spec, seed=3, settings=AugmentSettings(), multipliers=(1.0, 5.0))[17]["a_priority"]
    assert set(eyes.unique().tolist()) == {0.0, 9.0} and set(mouth.unique().tolist()) == {0.0, 4.0}
    assert torch.equal((eyes > 0) | (mouth > 0), features > 0), "the two features make up the default's"
    rows = torch.arange(64.0)[:, None]
    assert (rows * (eyes[0] > 0)).sum() / (eyes > 0).sum() + 15 < (rows * (mouth[0] > 0)).sum() / (mouth > 0).sum(), \
        "the eyes lie above the mouth"
    assert list(StepSampler(2, 4, 3, rank=1, world_size=2)) == [15, 16, 17, 21, 22, 23]


def test_flip_mirrors_the_face_and_its_masks_and_batches_pack_losslessly(config: TrainConfig) -> None:
    """A flip is part of the crop-to-model warp: with every other augmentation off, a flipped sample is the
    unflipped one mirrored, face, hull and features. A packed batch unpacks to each key's stack."""
    spec = build_model("original").spec
    pool = split_pool(load_pool(Path(config.faceset_a), 103), seed=3, holdout=0.05).train
    off = {"rotation_deg": 0.0, "zoom": 0.0, "shift": 0.0, "warp_scale": 0.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0}
    plain = PairDataset({"a": pool, "b": pool}, spec, seed=3, settings=AugmentSettings(flip=False, **off))
    flipping = PairDataset({"a": pool, "b": pool}, spec, seed=3, settings=AugmentSettings(flip=True, **off))
    mirrored = 0
    for k in range(16):
        as_is, maybe = plain[k], flipping[k]  # the same face: it is drawn before the augmentation
        if torch.equal(maybe["a_target"], as_is["a_target"]):
            continue
        mirrored += 1
        assert torch.allclose(maybe["a_target"], as_is["a_target"].flip(-1), atol=1e-4)
        for key in ("a_mask", "a_priority"):
            assert (maybe[key] != as_is[key].flip(-1)).float().mean() < 0.01, f"{key} is mirrored with the face"
    assert 4 <= mirrored <= 12, "about half the samples are flipped"
    samples = [flipping[k] for k in range(3)]
    packed = unpack_pairs(collate_pairs(samples), spec.size)
    assert set(packed) == set(samples[0])
    for key, block in packed.items():
        assert torch.equal(block, torch.stack([sample[key] for sample in samples])), key


def test_colour_jitter_changes_saturation_contrast_and_brightness(config: TrainConfig) -> None:
    """The one-pass colour change equals its three steps on a real face: saturation about each pixel's
    grey, contrast about the image's mean, then brightness, clipped to [0, 1]."""
    pool = load_pool(Path(config.faceset_a), 103)
    face = pool.crop(0).astype(np.float32) / 255.0
    settings = AugmentSettings(saturation=0.3, contrast=0.3, brightness=0.2)
    for seed in range(4):
        draws = np.random.default_rng(seed).uniform(-0.3, 0.3, size=2)
        brightness = np.random.default_rng(seed).uniform(-0.2, 0.2, size=3)[2]
        grey = face.mean(axis=2, keepdims=True)
        step = grey + (face - grey) * (1 + draws[0])
        step = step.mean() + (step - step.mean()) * (1 + draws[1])
        expected = np.clip(step + brightness, 0, 1)
        got = colour_jitter(face, np.random.default_rng(seed), settings)
        assert got.dtype == np.float32 and got.shape == face.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(colour_jitter(face, np.random.default_rng(0), settings) - face).mean() > 0.02, "it changes the face"


def test_resumed_run_equals_uninterrupted_run(config: TrainConfig, tmp_path: Path) -> None:
    straight = train(tmp_path / "straight", config, RunOptions(iterations=4, save_every=100, preview_every=100))
    first = train(tmp_path / "resumed", config, RunOptions(iterations=2, save_every=100, preview_every=100))
    assert first.iteration == 2
    second = train(tmp_path / "resumed", None, RunOptions(iterations=4, save_every=100, preview_every=100))
    assert straight.iteration == second.iteration == 4
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    before = load_file(complete_checkpoints(tmp_path / "resumed")[0] / "model.safetensors")
    assert any(not torch.equal(before[k], b[k]) for k in b), "the resumed steps changed nothing"
    rows = (tmp_path / "resumed" / "losses.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["batch_size"] == 4


def test_resume_with_a_new_learning_rate_applies_and_logs_it(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    train(model_dir, config, RunOptions(iterations=1, save_every=1, preview_every=100))
    result = train(model_dir, {"learning_rate": 1e-4, "batch_size": None}, RunOptions(iterations=2, save_every=1, preview_every=100))
    assert result.iteration == 2 and result.changes == ["learning rate: None -> 0.0001"]
    state = json.loads((complete_checkpoints(model_dir)[-1] / "state.json").read_text())
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-4, "Adam ran at the new rate, not the checkpoint's"
    runs = [json.loads(line) for line in (model_dir / "runs.jsonl").read_text().splitlines()]
    assert [r["from_iteration"] for r in runs] == [0, 1] and runs[1]["changes"] == result.changes
    assert json.loads((model_dir / "config.json").read_text())["learning_rate"] == 1e-4


def test_checkpoint_from_foreach_adam_resumes_fused(tmp_path: Path) -> None:
    """Checkpoints written before Adam was fused (or on another device) resume with this run's Adam."""
    from facetwin.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    old = torch.optim.Adam(layer.parameters(), lr=5e-5, betas=(0.5, 0.999), foreach=True)
    layer(torch.rand(3, 8)).sum().backward()
    old.step()
    save_checkpoint(tmp_path, 1, layer, old, {"seed": 0}, keep=1)
    fused = torch.optim.Adam(layer.parameters(), lr=1.0, betas=(0.9, 0.9), fused=True)
    load_checkpoint(checkpoints_in(tmp_path)[-1], layer, fused)
    group = fused.param_groups[0]
    assert group["fused"] is True and group["foreach"] is None, "the run's choice of Adam is kept"
    assert group["lr"] == 5e-5 and tuple(group["betas"]) == (0.5, 0.999), "the hyperparameters come from the checkpoint"
    torch.testing.assert_close(fused.state[layer.weight]["exp_avg"], old.state[layer.weight]["exp_avg"])
    assert fused.state[layer.weight]["step"].dtype == torch.float32
    layer(torch.rand(3, 8)).sum().backward()
    fused.step()
    assert float(fused.state[layer.weight]["step"]) == 2.0


def test_sigkill_during_training_resumes_cleanly(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "facetwin", "train", config.faceset_a, config.faceset_b, "-m", str(model_dir),
         "--batch-size", "2", "--iterations", "1000", "--save-every", "2", "--preview-every", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while len(complete_checkpoints(model_dir)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.7)  # land somewhere inside a step or a checkpoint write
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = complete_checkpoints(model_dir)
    assert len(saved) >= 2, "never checkpointed before the kill"
    last = int(saved[-1].name)
    result = train(model_dir, None, RunOptions(iterations=last + 2, save_every=1000, preview_every=1000))
    assert result.iteration == last + 2
    assert int(complete_checkpoints(model_dir)[-1].name) == last + 2
    assert len(complete_checkpoints(model_dir)) <= 3, "only the newest checkpoints are kept"


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    train(model_dir, config, RunOptions(iterations=1, save_every=100, preview_every=100))
    checkpoint = complete_checkpoints(model_dir)[-1]
    weights = load_file(checkpoint / "model.safetensors")
    key = "encoder.0.0.weight"
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_file(weights, checkpoint / "model.safetensors")
    with pytest.raises(NonFiniteLoss, match="last good checkpoint"):
        train(model_dir, None, RunOptions(iterations=3, save_every=1, preview_every=100))
    assert [p.name for p in complete_checkpoints(model_dir)] == [checkpoint.name], "no checkpoint after the NaN"


def test_ctrl_c_saves_and_stops(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "facetwin", "train", config.faceset_a, config.faceset_b, "-m", str(model_dir),
         "--model", "lightweight", "--learning-rate", "1e-4",
         "--batch-size", "2", "--iterations", "1000", "--save-every", "1000", "--preview-every", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = model_dir / "losses.csv"
    deadline = time.monotonic() + 180
    while (not log.is_file() or len(log.read_text().splitlines()) < 4) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted" in stdout
    saved = complete_checkpoints(model_dir)
    assert len(saved) == 1 and int(saved[0].name) >= 2
    state = json.loads((saved[0] / "state.json").read_text())
    assert state["reason"] == "interrupted"
    stored = json.loads((model_dir / "config.json").read_text())
    assert stored["model"] == "lightweight" and stored["learning_rate"] == 1e-4, "the run's settings stay with the model"
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-4, "and Adam ran at the rate asked for"
    resumed = run_cli("train", "-m", model_dir, "--iterations", str(int(saved[0].name) + 1), "--eye-multiplier", "6",
                      "--workers", "0")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    said = resumed.stderr.replace("\n", " ")
    assert said.count("changed for this model from now on: eye multiplier: 3.0 -> 6.0") == 1, said
    assert said.index("opening the face sets") < said.index("eye multiplier: 3.0 -> 6.0") < said.index("img/s"), (
        "said once, while the run sets up, before its first step")
    assert json.loads((model_dir / "config.json").read_text())["eye_multiplier"] == 6.0
    behind = run_cli("train", "-m", model_dir, "--iterations", "1", "--workers", "0")
    assert behind.returncode == 0, behind.stderr
    assert "past --iterations 1: nothing was trained" in behind.stderr.replace("\n", " "), behind.stderr


def test_two_process_ddp_keeps_ranks_identical(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facetwin",
         "train", config.faceset_a, config.faceset_b, "-m", str(model_dir), "--model", "masked128",
         "--batch-size", "2", "--iterations", "3", "--device", "cpu", "--workers", "0"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = complete_checkpoints(model_dir)[-1]
    ranks = json.loads((checkpoint / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(ranks["digests"]) == 2
    assert ranks["digests"][0] == ranks["digests"][1]
    assert int(checkpoint.name) == 3
    assert json.loads((checkpoint / "state.json").read_text())["world_size"] == 2


def test_short_training_run_learns(config: TrainConfig, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    learning = TrainConfig(config.faceset_a, config.faceset_b, model="original", batch_size=16, seed=0)
    result = train(model_dir, learning, RunOptions(iterations=60, save_every=60, preview_every=30))
    for side in ("a", "b"):
        start, end = result.initial_heldout_l1[side], result.heldout_l1[side]
        assert end <= 0.7 * start, f"held-out L1 of {side} went from {start:.4f} to {end:.4f}"
    assert (model_dir / "previews" / "000000030.png").is_file() and (model_dir / "previews" / "000000060.png").is_file()
    assert any((model_dir / "tb").iterdir())
    plotted = run_cli("train", "--plot", model_dir)
    assert plotted.returncode == 0 and (model_dir / "losses.png").is_file()
    assert np.isfinite(result.data_wait_fraction)


def test_a_checkpoint_trained_on_any_device_swaps_on_the_cpu(config: TrainConfig, tmp_path: Path) -> None:
    """Checkpoints hold CPU tensors whatever device trained them (on a GPU, bench/gpu.sh runs this)."""
    from facetwin.swapper import Swapper

    model_dir = tmp_path / "model"
    train(model_dir, config, RunOptions(iterations=2, save_every=2, preview_every=100))
    swapper = Swapper(model_dir, device="cpu")
    assert swapper.device.type == "cpu" and all(p.device.type == "cpu" for p in swapper.model.parameters())
    faces, _ = swapper.run(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32), "a")
    assert faces.shape == (2, 64, 64, 3) and np.isfinite(faces).all()


def test_masked128_trains_in_the_auto_precision(config: TrainConfig, tmp_path: Path) -> None:
    """bf16 autocast once drove masked128's SSIM to -inf on the first step; the loss must stay finite."""
    masked = TrainConfig(config.faceset_a, config.faceset_b, model="masked128", batch_size=16, seed=0)
    result = train(tmp_path / "model", masked, RunOptions(iterations=4, save_every=100, preview_every=100))
    assert result.iteration == 4 and result.last_losses is not None
    assert all(np.isfinite(loss) and 0 < loss < 3 for loss in result.last_losses)
    assert all(result.heldout_l1[side] < result.initial_heldout_l1[side] for side in ("a", "b"))
    assert (tmp_path / "model" / "previews" / "000000004.png").is_file(), "a run ends with a preview"


def test_the_demo_says_when_its_model_is_too_young_and_how_long_to_train() -> None:
    """A busy machine gets few iterations in the demo's minutes: below BLUR_BELOW the demo says so, with
    the DEMO_MINUTES that reaches it at the rate so far (a first user's 180 iterations in 15 minutes)."""
    from facetwin.demo import BLUR_BELOW, undertrained_notice

    notice = undertrained_notice(180, 15.0)
    assert notice is not None and "180 iterations" in notice and "DEMO_MINUTES=85 " in notice
    assert undertrained_notice(BLUR_BELOW, 15.0) is None
    assert "DEMO_MINUTES=30 " in (undertrained_notice(0, 0.0) or "")
