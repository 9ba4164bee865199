"""Training and swap speed per model, batch size and precision on one device, with model FLOP utilisation.

For each model, batch and precision: ``--steps`` steps of the real trainer (data loader, augmentation,
forward, loss, backward, Adam) on the given face sets; images/s and the share of each step spent waiting
for data are medians over the steps after ``WARMUP``. Model FLOP utilisation (MFU) is the model's own
training FLOPs per image (forward and backward, counted by torch.utils.flop_counter) times images/s,
over the device's measured bf16 matrix-multiply rate in the same run (``ceiling``), the way PaLM's
paper defines it. Swap throughput is faces/s through the model alone (the part of convert that runs
on the device), at each ``--swap-batches`` size, in the device's auto precision.

Made for a GPU (bench/gpu.sh runs it there); on a CPU it runs too, with small settings:

    .venv/bin/python bench/train_speed.py --device cpu --models lightweight --batches 4 --steps 4
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from facetwin.devices import choose_device, choose_precision
from facetwin.modeldir import ModelDir
from facetwin.models.base import PairForward
from facetwin.models.registry import build_model
from facetwin.options import RunOptions, TrainConfig
from facetwin.swapper import decode_with_mask
from facetwin.train.trainer import train

WARMUP = 3


def matmul_ceiling(device: torch.device, size: int, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s of one large square matrix multiply in bf16 and fp32 on ``device`` (median of ``repeats``)."""
    result = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = (torch.rand(size, size, device=device, dtype=dtype) for _ in range(2))
        a @ b
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        result[f"{name}_gflop_per_s"] = round(2 * size**3 / statistics.median(times) / 1e9, 1)
    return result


def train_flops_per_image(model_name: str) -> float:
    """FLOPs of one training image pair's forward and backward, divided by two (per image)."""
    model = build_model(model_name)
    size = model.spec.size
    with FlopCounterMode(display=False) as counter:
        outputs = PairForward(model)(torch.rand(1, 3, size, size), torch.rand(1, 3, size, size))
        sum(out.face.mean() for out in outputs.values()).backward()  # type: ignore[union-attr]
    return float(counter.get_total_flops()) / 2


def train_speed(sets: tuple[Path, Path], model: str, batch: int, precision: str, device: str, steps: int,
                workers: int, scratch: Path) -> dict[str, float]:
    folder = ModelDir(scratch / f"{model}_{batch}_{precision}")
    config = TrainConfig(str(sets[0]), str(sets[1]), model=model, batch_size=batch)
    train(folder, config, RunOptions(iterations=steps, save_every=10**6, preview_every=10**6, device=device,
                                     precision=precision, workers=workers))  # fmt: skip
    with open(folder.losses_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["loss_a"]][WARMUP:]
    return {"images_per_s": round(statistics.median(float(r["images_per_s"]) for r in rows), 1),
            "data_wait": round(statistics.median(float(r["data_wait"]) for r in rows), 4), "steps": len(rows)}  # fmt: skip


def swap_speed(model_name: str, device: torch.device, batch: int, repeats: int = 10) -> float:
    """Faces/s through the model alone, in the auto precision, weights held in it (as Swapper does)."""
    model = build_model(model_name).to(device).eval()
    dtype = choose_precision("auto", device)
    if dtype == torch.bfloat16:
        model.to(torch.bfloat16)
    size = model.spec.size
    faces = np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32)
    decode_with_mask(model, faces, "a", device, dtype)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode_with_mask(model, faces, "a", device, dtype)  # returns numpy: synchronised
        times.append(time.perf_counter() - start)
    return round(batch / statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, nargs=2, help="FACESET_A FACESET_B (default: the demo clips, every 10th frame)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default="original,lightweight,masked128")
    parser.add_argument("--batches", default="16,64,256")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--swap-batches", default="16,64")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--matmul-size", type=int, default=0, help="default: 8192 on CUDA, 1024 on CPU")
    args = parser.parse_args()
    device = choose_device(args.device)
    with tempfile.TemporaryDirectory(prefix="facetwin-speed-") as scratch_name:
        scratch = Path(scratch_name)
        if args.faces:
            sets = (args.faces[0], args.faces[1])
        else:
            from facetwin.demo_data import ensure_demo_clips
            from facetwin.extract import extract
            from facetwin.options import ExtractOptions

            clips = ensure_demo_clips()
            sets = (scratch / "A", scratch / "B")
            extract([clips.franck], sets[0], ExtractOptions(every=10, max_faces=1))
            extract([clips.cap12], sets[1], ExtractOptions(every=10, max_faces=1))
        ceiling = matmul_ceiling(device, args.matmul_size or (8192 if device.type == "cuda" else 1024))
        peak = ceiling["bf16_gflop_per_s"] * 1e9
        results: dict[str, object] = {}
        for model in args.models.split(","):
            per_image = train_flops_per_image(model)
            runs = {}
            for batch in map(int, args.batches.split(",")):
                for precision in args.precisions.split(","):
                    try:
                        figures = train_speed(sets, model, batch, precision, args.device, args.steps, args.workers, scratch)
                        figures["mfu"] = round(figures["images_per_s"] * per_image / peak, 4)
                    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # out of memory at a large batch
                        figures = {"error": str(exc).splitlines()[0]}
                    runs[f"batch_{batch}_{precision}"] = figures
            swaps = {f"batch_{b}": swap_speed(model, device, b) for b in map(int, args.swap_batches.split(","))}
            results[model] = {"train_gflop_per_image": round(per_image / 1e9, 3), "train": runs, "swap_faces_per_s": swaps}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({"benchmark": "train_speed", "device": name, "torch": torch.__version__, "ceiling": ceiling,
                      "steps": args.steps, "workers": args.workers, "models": results}, indent=2))


if __name__ == "__main__":
    main()
