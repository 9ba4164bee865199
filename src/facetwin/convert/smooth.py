"""Temporal smoothing of landmarks with the One-Euro filter (Casiez et al., CHI 2012).

Per-frame landmarks jitter by a pixel or two even on a still head; the swap then shimmers. A plain
low-pass filter would lag on fast moves. The One-Euro filter adapts: its cut-off frequency rises with
speed, so slow jitter is smoothed hard and real motion passes with little lag.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array of any shape sampled at irregular times (seconds)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def reset(self) -> None:
        self._value = self._speed = self._time = None

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._speed is None or self._time is None or time <= self._time:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value
        dt = time - self._time
        speed = (value - self._value) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._speed = a_d * speed + (1 - a_d) * self._speed
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        tau = 1.0 / (2 * np.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._value = a * value + (1 - a) * self._value
        self._time = time
        return self._value.copy()
