"""How long a Kafka consumer's fetch may wait at the broker: short while records flow, long while idle.

A Kafka broker answers a fetch as soon as records arrive, so there the wait only bounds idle fetches. The
local Tansu answers at once when records are already there; otherwise it looks again after half the wait,
then at halving steps down to 125 ms (a wait under 250 ms is held whole), so a record that arrives meanwhile
waits up to half the wait. A short wait keeps latency low and costs ~100 fetches a second (measured at
10 ms: ~6 % of a core in Tansu and ~4.5 % in the consumer, for a consumer that receives nothing).
So the wait follows how long the consumer has been idle: `short` while records arrive and for `hold` seconds
after the last ones (pauses in a flow cost nothing), then a `fraction` of the idle time beyond `hold`, up to
`long`. A record after t idle seconds waits at most `fraction`·(t − `hold`) longer (capped at `long`), and an
idle consumer fetches about 1/`long` times a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SHORT, LONG, FRACTION, HOLD = 0.010, 0.5, 0.05, 2.0


@dataclass
class AdaptiveFetchWait:
    short: float = SHORT
    long: float = LONG
    fraction: float = FRACTION
    hold: float = HOLD
    since: float = field(default=0.0)  # last time records arrived (or the consumer started)

    def records(self, now: float) -> None:
        """Records arrived: fetch with the short wait again."""
        self.since = now

    def wait(self, now: float) -> float:
        """The fetch wait in seconds for a fetch sent at `now`."""
        return min(self.long, max(self.short, (now - self.since - self.hold) * self.fraction))


def set_fetch_wait(consumer: Any, seconds: float) -> None:
    """Use `seconds` as an aiokafka consumer's fetch.max.wait from its next fetch on.

    aiokafka fixes `fetch_max_wait_ms` at construction; its fetcher reads the attribute for every request it
    builds, so setting it there changes the wait of the next fetch. Absent (not started, another version):
    the constructor's value stays."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
        fetcher._fetch_max_wait_ms = max(1, round(seconds * 1000))
