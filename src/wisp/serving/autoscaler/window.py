"""Averages over a time window of 1 s buckets, as Knative's aggregation.TimedFloat64Buckets computes them.

The buckets form a ring covering `window` seconds. The average divides by the number of *valid*
buckets, not the window length:
- during the first seconds after the first write (or after a full window without writes) it averages
  only the buckets since that first write, so a burst right after idleness counts at full weight;
- when the latest write is older than now (no data for a while, less than a window), it averages the
  still-valid buckets only;
- gaps shorter than a window between writes count as zeros;
- with no write in the last window the average is 0.
"""

from __future__ import annotations

import math

_PRECISION = 1e6  # Knative floors averages to 6 digits so float noise cannot push ceil() up a pod


def _floor6(value: float) -> float:
    return math.floor(value * _PRECISION + 1e-7) / _PRECISION


class TimedBuckets:
    """A ring of `ceil(window / granularity)` buckets indexed by whole-second time."""

    def __init__(self, window: float, granularity: float = 1.0) -> None:
        if window <= 0 or granularity <= 0:
            raise ValueError("window and granularity must be positive")
        self._granularity = granularity
        self._window = window
        self._buckets = [0.0] * math.ceil(window / granularity)
        self._first: int | None = None  # bucket index of the first write since the last reset
        self._last: int | None = None  # bucket index of the latest write
        self._total = 0.0

    @property
    def window(self) -> float:
        return self._window

    def _index(self, t: float) -> int:
        return math.floor(t / self._granularity)

    def _gap_exceeds_window(self, newer: int, older: int) -> bool:
        return (newer - older) * self._granularity > self._window

    def record(self, t: float, value: float) -> None:
        """Add `value` to the bucket of time `t`. Writes older than the window are dropped."""
        idx = self._index(t)
        n = len(self._buckets)
        if self._last is not None and idx < self._last and self._gap_exceeds_window(self._last, idx):
            return
        if self._last is None or self._gap_exceeds_window(idx, self._last):
            # A full window without data: start over, and average over the new data only.
            self._buckets = [0.0] * n
            self._total = 0.0
            self._first = idx
            self._last = idx
        elif idx > self._last:
            # Buckets skipped since the last write held stale values from one ring turn ago: zero them.
            for i in range(self._last + 1, idx + 1):
                self._total -= self._buckets[i % n]
                self._buckets[i % n] = 0.0
            self._last = idx
        if self._first is None or idx < self._first:
            self._first = idx
        self._buckets[idx % n] += value
        self._total += value

    def is_empty(self, now: float) -> bool:
        """True when nothing was written in the last window."""
        return self._last is None or self._gap_exceeds_window(self._index(now), self._last)

    def window_average(self, now: float) -> float:
        """The average bucket value over the window ending at `now` (Knative's WindowAverage)."""
        if self._last is None or self._first is None:
            return 0.0
        now_idx = self._index(now)
        n = len(self._buckets)
        since_first = self._last - self._first + 1
        behind = now_idx - self._last
        if behind <= 0:
            return _floor6(self._total / min(since_first, n))
        if behind * self._granularity < self._window:
            total = self._total
            for i in range(self._last + 1, now_idx + 1):
                total -= self._buckets[i % n]
            valid = min(since_first, n - behind)
            return _floor6(total / valid) if valid > 0 else 0.0
        return 0.0

    def resize(self, window: float) -> None:
        """Change the window length, keeping the newest buckets that still fit (for live config changes)."""
        if window == self._window:
            return
        if window <= 0:
            raise ValueError("window must be positive")
        old, n_old = self._buckets, len(self._buckets)
        n_new = math.ceil(window / self._granularity)
        new = [0.0] * n_new
        total = 0.0
        if self._last is not None and self._first is not None:
            keep = min(n_old, n_new, self._last - self._first + 1)
            for i in range(self._last - keep + 1, self._last + 1):
                new[i % n_new] = old[i % n_old]
                total += old[i % n_old]
            self._first = self._last - keep + 1
        self._buckets = new
        self._total = total
        self._window = window
