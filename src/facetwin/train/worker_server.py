"""Where DataLoader workers come from, and starting it early.

Workers are forked from a forkserver that has imported their code (train/worker_preload.py). Not forked
from the training process: it runs OpenMP and TensorBoard threads, and a forked child can deadlock on a
lock one of them held; not spawned: each spawned worker imports PyTorch anew (~200 MiB each, against
~64 MiB forked from the preloaded server).

The server's start is mostly its imports (PyTorch and the data code, ~4 s on 2 cores). ``start`` launches
it without waiting, so the training process can set up at the same time (open the face caches, build
the model and optimizer, score step 0) and its first worker is forked from a server that is ready.
Measured (bench/train_data.py's ``train_run``, warm cache, 1 worker, seconds to the first step, runs of
the tree before and after alternating): demo sets, lightweight 12.0 -> 9.2 (medians of 3); 100,000 faces,
lightweight 24.6, 18.4 -> 14.8, 15.8, masked128 27.4, 20.7 -> 19.1, 19.3.
This module imports no PyTorch, so the CLI can call ``start`` before it imports the trainer.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver

PRELOAD = ["facetwin.train.worker_preload"]


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context a DataLoader's workers are made in: the preloaded forkserver."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start(workers: int) -> None:
    """Launch the forkserver now, when ``workers`` > 0 (it then imports in the background); a no-op when it
    runs already. Raises OSError when the process cannot be started (then so could no worker)."""
    if workers > 0:
        worker_context()
        multiprocessing.forkserver.ensure_running()
