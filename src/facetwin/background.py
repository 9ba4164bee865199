"""Run a function on a background thread, one call at a time, in the order the calls were handed in.

Extract stores frames this way (PNG encoding and SQLite commits overlap with the face models) and
convert encodes video this way (H.264 encoding overlaps with detection and the swap). Errors raised by
the function (a full disk, say) are re-raised in the caller's thread at the next ``put`` or ``drain``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

_STOP = object()


class BackgroundWorker:
    """``put(*args)`` queues ``function(*args)``; ``drain`` waits for all queued calls. A context manager."""

    def __init__(self, function: Callable[..., Any], depth: int = 16, name: str = "facetwin-worker") -> None:
        self._function = function
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:
                    self._function(*item)  # type: ignore[misc]
            except BaseException as error:  # kept for the caller, which decides
                self._error = error
            finally:
                self._queue.task_done()

    def put(self, *args: Any) -> None:
        self._raise_if_failed()
        self._queue.put(args)

    def drain(self) -> None:
        self._queue.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWorker:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if kind is None:
            self._raise_if_failed()
