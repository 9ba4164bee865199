"""Store processed frames from a background thread, in order, so PNG encoding and SQLite commits
overlap with the face models on the main thread (PNG encoding is a quarter of extract's per-frame work).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from types import TracebackType

from facetwin.faceset import FaceSet, NewFace

_STOP = object()


class FrameStore:
    """``put`` hands a frame to the writer thread; ``drain`` waits until all are committed and re-raises
    the first storage error (a full disk, say) in the caller's thread. Use as a context manager."""

    def __init__(self, faceset: FaceSet, depth: int = 16) -> None:
        self._faceset = faceset
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="facetwin-store", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:
                    self._faceset.add_frame(*item)  # type: ignore[misc]
            except BaseException as error:  # kept for the caller, which decides
                self._error = error
            finally:
                self._queue.task_done()

    def put(self, source_id: int, frame_index: int, seconds: float, faces: Sequence[NewFace]) -> None:
        self._raise_if_failed()
        self._queue.put((source_id, frame_index, seconds, faces))

    def drain(self) -> None:
        self._queue.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if kind is None:
            self._raise_if_failed()
