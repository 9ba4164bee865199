"""One DataLoader throughput run of whichever facetwin is on PYTHONPATH, as its trainer builds the loader.

bench/train_data.py runs this in a fresh process for this tree and for an older checkout (the loader a
change replaced), alternating, so it only imports what both have: ``load_pool``, ``PairDataset``,
``StepSampler`` and ``worker_init``; when the tree has them it also uses the trainer's worker context
(``train.worker_server``) and batch packing (``train.data.collate_pairs``). One worker, batches of 16,
20 batches of warm-up, then ``batches`` measured. Prints one JSON line: ``samples_per_s`` (faces of both
sides), ``worker_cpu_ms_per_batch`` and ``main_cpu_ms_per_batch`` (user + system CPU from /proc).

    PYTHONPATH=TREE/src .venv/bin/python bench/loader_probe.py FACESET_A FACESET_B MODEL BATCHES
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

WARM_UP = 20
BATCH = 16


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from torch.utils.data import DataLoader

    from facetwin.facepool import load_pool
    from facetwin.models.registry import build_model
    from facetwin.options import AugmentSettings
    from facetwin.train import data

    set_a, set_b, model, batches = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    spec = build_model(model).spec
    size = math.ceil(spec.size / spec.coverage)  # the working size, in trees that predate facepool.working_size
    pools = {"a": load_pool(set_a, size), "b": load_pool(set_b, size)}
    options: dict[str, Any] = {"multiprocessing_context": "spawn"}
    try:
        from facetwin.train.worker_server import worker_context

        options["multiprocessing_context"] = worker_context()
    except ImportError:
        pass
    unpack = getattr(data, "unpack_pairs", None)
    if unpack is not None:
        options["collate_fn"] = data.collate_pairs
    loader = DataLoader(data.PairDataset(pools, spec, 0, AugmentSettings()), batch_size=BATCH,
                        sampler=data.StepSampler(0, WARM_UP + batches + 4, BATCH), num_workers=1,
                        worker_init_fn=data.worker_init, prefetch_factor=4, **options)  # fmt: skip
    iterator = iter(loader)
    for _ in range(WARM_UP):
        next(iterator)
    worker = iterator._workers[0].pid  # type: ignore[attr-defined]
    worker_before, main_before, started = cpu_seconds(worker), cpu_seconds(os.getpid()), time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        if unpack is not None:
            batch = unpack(batch, spec.size)
        if batch["b_priority"].shape != (BATCH, 1, spec.size, spec.size):
            raise SystemExit(f"unexpected batch: b_priority {tuple(batch['b_priority'].shape)}")
    wall = time.perf_counter() - started
    print(json.dumps({"samples_per_s": batches * BATCH * 2 / wall,
                      "worker_cpu_ms_per_batch": (cpu_seconds(worker) - worker_before) * 1e3 / batches,
                      "main_cpu_ms_per_batch": (cpu_seconds(os.getpid()) - main_before) * 1e3 / batches}))  # fmt: skip


if __name__ == "__main__":
    main()
