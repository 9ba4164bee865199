"""Keep MediaPipe's native start-up chatter (absl/TFLite lines on fd 2) out of the user's terminal.

MediaPipe's C++ graphs log from their own threads, before and after Python sees anything, straight to
file descriptor 2, so neither ``logging`` nor ``GLOG_minloglevel`` reaches them. The CLI points
Python's ``sys.stderr`` at a copy of the real stderr (so Rich still sees a terminal and draws its
progress bars), and routes fd 2, which only native code then uses, through a pipe and a thread that
forwards every line except the known-noise ones. Set FACETWIN_NATIVE_LOGS=1 to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import threading

NOISE = re.compile(rb"^(?:[WI]0000 \d\d:\d\d:[\d.]+ +\d+ \S+\.cc:\d+\]|INFO: Created TensorFlow Lite|WARNING: All log messages before absl)")
_installed = False


def filter_native_stderr() -> None:
    """Install the filter once per process (idempotent; a no-op when asked to show native logs)."""
    global _installed
    if _installed or os.environ.get("FACETWIN_NATIVE_LOGS") == "1":
        return
    _installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(original, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace", closefd=False)

    def forward() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
                if kept:
                    os.write(original, kept)
            if pending:
                os.write(original, pending)

    threading.Thread(target=forward, name="facetwin-stderr-filter", daemon=True).start()
