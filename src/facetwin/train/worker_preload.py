"""What the forkserver imports before it forks DataLoader workers, and then freezes.

Workers are forked from a forkserver (a clean process started for that, without the training process's
threads), which imports the workers' code once; each worker then shares those pages copy-on-write
instead of importing PyTorch again. ``gc.freeze`` moves everything imported so far out of the garbage
collector's reach, so collections in a worker do not touch (and copy) the shared pages. Measured on the
demo sets (lightweight, tree PSS): each worker beyond the first cost 206 MiB spawned, 102 MiB forked
from a plain forkserver, 64 MiB with the freeze (bench/train_data.py reports the training figures).
"""

import gc

import facetwin.train.data  # noqa: F401 - imported for the workers, once

gc.collect()
gc.freeze()
