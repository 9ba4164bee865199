"""Training speed of ``original`` at batch 16: fp32 against the ``auto`` path (bf16 autocast where the CPU
has AVX-512 BF16 or AMX), measured in the same run with the real trainer, plus the share of step time
spent waiting for data, achieved GFLOP/s, and whether bf16 trains as well as fp32 (held-out L1 after N
steps each).

``matmul_ceiling`` is the best the CPU does on one large matrix multiply in each precision: the
hardware's own bf16/fp32 ratio, against which ``auto_speedup`` is to be read.

It also measures the design choices behind the training step, each against its alternative in the same
run, on one model step (forward, backward, Adam) in the ``auto`` precision:
- memory layout: channels_last against plain NCHW (``facetwin.devices.memory_format`` picks one);
- Adam: fused against the per-tensor foreach version;
- the 4x4 bottleneck convolutions as one GEMM (``facetwin.models.blocks.Conv2d``) against oneDNN's kernel.

Prints JSON; quote the medians.

    .venv/bin/python bench/train.py [--steps 30] [--quality-steps 300] [--model original]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from facetwin.demo_data import ensure_demo_clips
from facetwin.devices import choose_precision, memory_format
from facetwin.extract import extract
from facetwin.modeldir import ModelDir
from facetwin.models import blocks
from facetwin.models.base import PairForward
from facetwin.models.registry import build_model
from facetwin.options import ExtractOptions, RunOptions, TrainConfig
from facetwin.train.trainer import train

WARMUP = 5


def facesets(scratch: Path) -> tuple[Path, Path]:
    clips = ensure_demo_clips()
    a, b = scratch / "A", scratch / "B"
    extract([clips.franck], a, ExtractOptions(every=10, max_faces=1))
    extract([clips.cap12, clips.cap13], b, ExtractOptions(every=10, max_faces=1))
    return a, b


def speed(config: TrainConfig, scratch: Path, precision: str, steps: int) -> dict[str, float]:
    model_dir = scratch / f"speed_{precision}"
    train(model_dir, config, RunOptions(iterations=steps, save_every=10**6, preview_every=10**6, precision=precision))
    with open(ModelDir(model_dir).losses_csv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["loss_a"]][WARMUP:]
    return {
        "images_per_s_median": round(statistics.median(float(r["images_per_s"]) for r in rows), 2),
        "data_wait_fraction_median": round(statistics.median(float(r["data_wait"]) for r in rows), 4),
        "steps_measured": len(rows),
    }


def flops_per_step(model_name: str, batch: int) -> float:
    model = build_model(model_name)
    size = model.spec.size
    step = PairForward(model)
    with FlopCounterMode(display=False) as counter:
        outputs = step(torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size))
        sum(out[0].mean() for out in outputs.values()).backward()
    return float(counter.get_total_flops())


def step_ms(model_name: str, batch: int, dtype: torch.dtype, layout: torch.memory_format, fused: bool, gemm: bool, steps: int) -> float:
    """Median wall time of one training step (forward, L1 backward, Adam) on fixed random batches."""
    saved, blocks.GEMM_MAX_POSITIONS = blocks.GEMM_MAX_POSITIONS, (blocks.GEMM_MAX_POSITIONS if gemm else 0)
    try:
        torch.manual_seed(0)
        model = build_model(model_name).to(memory_format=layout)
        optimizer = torch.optim.Adam(model.parameters(), lr=model.learning_rate, betas=model.betas, fused=fused, foreach=not fused)
        step = PairForward(model)
        size = model.spec.size
        a, b = (torch.rand(batch, 3, size, size).contiguous(memory_format=layout) for _ in range(2))
        times = []
        for i in range(WARMUP + steps):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                outputs = step(a, b)
                loss = sum((out[0].float() - target).abs().mean() for out, target in zip(outputs.values(), (a, b)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
        return round(statistics.median(times) * 1000, 1)
    finally:
        blocks.GEMM_MAX_POSITIONS = saved


def matmul_ceiling(size: int = 2048, repeats: int = 7) -> dict[str, float]:
    """GFLOP/s of one large square matrix multiply in fp32 and in bf16: what the CPU's vector units can
    give at best, so the training speedup can be read against the hardware's own ratio. On a CPU with
    AVX-512 BF16 but no AMX, one bf16 dot-product instruction does twice the multiply-adds of an fp32
    FMA, so about 2x is the ceiling; AMX tiles raise it several-fold."""
    result: dict[str, float] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
        a @ b  # warm-up: oneDNN picks and prepares its kernel
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        result[f"{name}_gflop_per_s"] = round(2 * size**3 / statistics.median(times) / 1e9, 1)
    result["bf16_over_fp32"] = round(result["bf16_gflop_per_s"] / result["fp32_gflop_per_s"], 2)
    return result


def design_choices(model_name: str, batch: int, steps: int) -> dict[str, dict[str, float | str]]:
    """Each choice of the training step against its alternative, everything else as facetwin runs it."""
    device = torch.device("cpu")
    dtype = choose_precision("auto", device)
    chosen = {"layout": memory_format(device), "fused": True, "gemm": True}
    alternatives = {
        "layout": torch.channels_last if chosen["layout"] == torch.contiguous_format else torch.contiguous_format,
        "fused": False,
        "gemm": False,
    }
    names = {"layout": lambda v: "channels_last" if v == torch.channels_last else "nchw",
             "fused": lambda v: "fused" if v else "foreach", "gemm": lambda v: "gemm" if v else "onednn"}  # fmt: skip
    base = step_ms(model_name, batch, dtype, steps=steps, **chosen)
    results: dict[str, dict[str, float | str]] = {}
    for key, other in alternatives.items():
        other_ms = step_ms(model_name, batch, dtype, steps=steps, **{**chosen, key: other})
        results[key] = {"chosen": names[key](chosen[key]), "chosen_step_ms": base,
                        "alternative": names[key](other), "alternative_step_ms": other_ms,
                        "speedup_of_chosen": round(other_ms / base, 2)}  # fmt: skip
    return results


def quality(config: TrainConfig, scratch: Path, precision: str, steps: int) -> dict[str, float]:
    """Whether this precision trains as well: held-out L1 at the end, and, since one reading of a young
    model swings from step to step, the mean of the held-out readings over the second half of the run
    (one every ``steps // 10``) and the mean training loss over the last fifth of the steps."""
    model_dir = scratch / f"quality_{precision}"
    every = max(1, steps // 10)
    result = train(model_dir, config, RunOptions(iterations=steps, save_every=10**6, preview_every=every, precision=precision))
    with open(ModelDir(model_dir).losses_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    late_heldout = [r for r in rows if r["heldout_l1_a"] and int(r["iteration"]) > steps // 2]
    late_losses = [r for r in rows if r["loss_a"] and int(r["iteration"]) > steps - steps // 5]
    figures = {f"heldout_l1_{k}": round(v, 5) for k, v in result.heldout_l1.items()}
    for side in ("a", "b"):
        figures[f"heldout_l1_{side}_mean_second_half"] = round(statistics.mean(float(r[f"heldout_l1_{side}"]) for r in late_heldout), 5)
        figures[f"train_loss_{side}_mean_last_fifth"] = round(statistics.mean(float(r[f"loss_{side}"]) for r in late_losses), 5)
    return figures | {f"initial_heldout_l1_{k}": round(v, 5) for k, v in result.initial_heldout_l1.items()}


def speed_figures(args: argparse.Namespace, config: TrainConfig, scratch: Path) -> dict[str, object]:
    """images/s in fp32 and in the auto path through the real trainer, data wait, GFLOP/s, the ceiling."""
    fp32 = speed(config, scratch, "fp32", args.steps)
    auto = speed(config, scratch, "auto", args.steps)
    flops = flops_per_step(args.model, args.batch_size)
    steps_per_s = {name: r["images_per_s_median"] / (2 * args.batch_size) for name, r in (("fp32", fp32), ("auto", auto))}
    return {
        "images_per_step": 2 * args.batch_size,
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "auto_precision": str(choose_precision("auto", torch.device("cpu"))).replace("torch.", ""),
        "fp32": fp32,
        "auto": auto,
        "auto_speedup": round(auto["images_per_s_median"] / fp32["images_per_s_median"], 2),
        "target_speedup": 2.5,
        "gflop_per_step": round(flops / 1e9, 2),
        "achieved_gflop_per_s": {k: round(flops * v / 1e9, 1) for k, v in steps_per_s.items()},
        "cpu_bf16": {"avx512_bf16": torch.cpu._is_avx512_bf16_supported(), "amx": torch.cpu._is_amx_tile_supported()},
        "matmul_ceiling": matmul_ceiling(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="original")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30, help="steps timed per precision (0: skip)")
    parser.add_argument("--quality-steps", type=int, default=300, help="steps trained per precision (0: skip)")
    parser.add_argument("--design-steps", type=int, default=8, help="steps timed per design choice (0: skip)")
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "train", "model": args.model, "batch_size_per_identity": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        a, b = facesets(scratch)
        config = TrainConfig(str(a), str(b), model=args.model, batch_size=args.batch_size, seed=0)
        if args.steps:
            result |= speed_figures(args, config, scratch)
        if args.design_steps:
            result["design_choices"] = design_choices(args.model, args.batch_size, args.design_steps)
        if args.quality_steps:
            result["quality_steps"] = args.quality_steps
            result["quality_fp32"] = quality(config, scratch, "fp32", args.quality_steps)
            result["quality_auto"] = quality(config, scratch, "auto", args.quality_steps)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
