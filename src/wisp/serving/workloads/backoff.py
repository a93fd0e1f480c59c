"""Restart backoff for a supervised process, as the kubelet does CrashLoopBackOff, on a clock passed in.

The first restart after a healthy run is immediate (a one-off crash or a `kill -9` should cost no more than
the restart itself); each further crash before the process has stayed up `reset_after` seconds doubles
the wait, up to `cap`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    reset_after: float = 60.0  # kubelet: 2 × its 5 min cap; ours is shorter, so is this
    crashes: int = 0  # consecutive crashes that did not follow a healthy run
    _up_since: float | None = None

    def started(self, now: float) -> None:
        """The process is up (loaded and serving) as of `now`."""
        self._up_since = now

    def next_delay(self, now: float) -> float:
        """Seconds to wait before restarting a process that has just exited at `now`."""
        if self._up_since is not None and now - self._up_since >= self.reset_after:
            self.crashes = 0
        self._up_since = None
        self.crashes += 1
        if self.crashes == 1:
            return 0.0
        return min(self.cap, self.initial * self.factor ** (self.crashes - 2))
