"""Per-revision request metrics: time-weighted in-flight concurrency and arrivals, in 1 s samples.

The throttler reports each request's start (when it enters, queued or not: held requests count, as
Knative's activator reports them) and finish. Concurrency is integrated over time, so two 0.5 s
requests in one second give a sample of 1.0. Completed seconds are recorded into the stable and panic
windows (`TimedBuckets`) when `flush` runs, as Knative's collector records one scrape per second.

Idle seconds are recorded as zeros only while instances exist (Knative scrapes pods; with no pods
nothing is written), so after a window of idleness at zero the next burst averages at full weight.
"""

from __future__ import annotations

import math

from wisp.api.autoscaling.spec import RPS
from wisp.serving.autoscaler.window import TimedBuckets


class RequestCollector:
    """In-flight requests of one revision, integrated into per-second samples and windowed."""

    def __init__(self, stable_window: float, panic_window: float) -> None:
        self.in_flight = 0
        self.started_total = 0
        self.finished_total = 0
        self._t: float | None = None  # integration has been carried up to this time
        self._pending: dict[int, list[float]] = {}  # second → [concurrency·seconds, arrivals]
        self._flushed_through: int | None = None  # every second <= this one is in the windows
        self._last_active: float | None = None
        self._stable_concurrency = TimedBuckets(stable_window)
        self._panic_concurrency = TimedBuckets(panic_window)
        self._stable_rps = TimedBuckets(stable_window)
        self._panic_rps = TimedBuckets(panic_window)

    # -- events from the request path ---------------------------------------------------------------

    def request_started(self, now: float) -> None:
        self._advance(now)
        self.in_flight += 1
        self.started_total += 1
        self._sample(math.floor(now))[1] += 1
        self._last_active = now

    def request_finished(self, now: float) -> None:
        self._advance(now)
        if self.in_flight > 0:  # a finish without a start is a caller bug; never go negative
            self.in_flight -= 1
            self.finished_total += 1
        self._last_active = now

    def last_active(self, now: float) -> float | None:
        """When a request last started or finished; `now` while any is in flight; None if never."""
        return now if self.in_flight > 0 else self._last_active

    # -- windows ----------------------------------------------------------------------------------------

    def flush(self, now: float, record_idle: bool) -> None:
        """Record every completed second before `now` into the windows.

        `record_idle` (instances exist) records quiet seconds as zeros; otherwise only seconds that
        had requests are recorded.
        """
        self._advance(now)
        current = math.floor(now)
        horizon = current - math.ceil(self._max_window()) - 1  # older seconds cannot matter
        if record_idle:
            # The first flush records nothing idle: seconds before it may predate the revision.
            start = self._flushed_through + 1 if self._flushed_through is not None else current
            if self._pending:
                start = min(start, min(self._pending))
            seconds = range(max(start, horizon), current)
        else:
            seconds = range(0)
        todo = sorted(set(seconds) | {s for s in self._pending if s < current})
        for sec in todo:
            concurrency, arrivals = self._pending.pop(sec, (0.0, 0.0))
            if sec <= horizon:
                continue
            self._record(sec, concurrency, arrivals)
        if self._flushed_through is None or self._flushed_through < current - 1:
            self._flushed_through = current - 1

    def averages(self, now: float, metric: str) -> tuple[float, float]:
        """(stable, panic) window averages of the metric, concurrency or requests per second.

        The windows hold completed seconds only, so they are read as of the last completed second:
        read at `now`, the second in progress would count as a missing bucket (and a 1 s panic
        window would always be empty).
        """
        at = float(math.floor(now) - 1)
        if metric == RPS:
            return self._stable_rps.window_average(at), self._panic_rps.window_average(at)
        return self._stable_concurrency.window_average(at), self._panic_concurrency.window_average(at)

    def resize(self, stable_window: float, panic_window: float) -> None:
        self._stable_concurrency.resize(stable_window)
        self._stable_rps.resize(stable_window)
        self._panic_concurrency.resize(panic_window)
        self._panic_rps.resize(panic_window)

    # -- internals ----------------------------------------------------------------------------------

    def _max_window(self) -> float:
        return max(self._stable_concurrency.window, self._panic_concurrency.window)

    def _sample(self, sec: int) -> list[float]:
        sample = self._pending.get(sec)
        if sample is None:
            sample = self._pending[sec] = [0.0, 0.0]
        return sample

    def _record(self, sec: int, concurrency: float, arrivals: float) -> None:
        t = float(sec)
        self._stable_concurrency.record(t, concurrency)
        self._panic_concurrency.record(t, concurrency)
        self._stable_rps.record(t, arrivals)
        self._panic_rps.record(t, arrivals)

    def _advance(self, now: float) -> None:
        """Integrate the current in-flight count from the last event up to `now`."""
        if self._t is None or now <= self._t:
            self._t = now if self._t is None else self._t  # a clock that steps back adds nothing
            return
        t = self._t
        if self.in_flight > 0:
            # Seconds older than every window cannot matter; skip them on long gaps.
            t = max(t, math.floor(now) - math.ceil(self._max_window()) - 1)
            while t < now:
                sec = math.floor(t)
                end = min(sec + 1.0, now)
                self._sample(sec)[0] += self.in_flight * (end - t)
                t = end
        self._t = now
