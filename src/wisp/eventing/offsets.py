"""Which offset of a partition may be committed: only up to the last one with no unsettled record before it.

Pure bookkeeping, one tracker per assigned partition. Offsets are fetched in increasing order (Kafka hands a
partition out in order); gaps (compaction, transaction markers) are fine.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    """Tracks fetched and settled offsets of one partition.

    `committable()` is the offset to commit (Kafka commits "the next offset to read"), or None when it would
    not move past what `committed()` last recorded.
    """

    def __init__(self, committed: int | None = None) -> None:
        self._pending: deque[int] = deque()  # fetched, in fetch order; settled ones are dropped from the left
        self._unsettled: set[int] = set()
        self._last_fetched: int | None = None
        self._first_fetched: int | None = None
        self._committed = committed

    def fetched(self, offset: int) -> None:
        if self._last_fetched is not None and offset <= self._last_fetched:
            raise ValueError(f"offset {offset} fetched after {self._last_fetched}; reset() the tracker first")
        if self._first_fetched is None:
            self._first_fetched = offset
        self._last_fetched = offset
        self._pending.append(offset)
        self._unsettled.add(offset)

    def settled(self, offset: int) -> None:
        self._unsettled.discard(offset)
        while self._pending and self._pending[0] not in self._unsettled:
            self._pending.popleft()

    def committable(self) -> int | None:
        if self._last_fetched is None:
            return None
        candidate = self._pending[0] if self._pending else self._last_fetched + 1
        # Without a recorded commit, the first fetched offset is where the group already stands.
        floor = self._committed if self._committed is not None else self._first_fetched
        if floor is not None and candidate <= floor:
            return None
        return candidate

    def committed(self, offset: int) -> None:
        """Record that `offset` was committed (so `committable()` only reports progress)."""
        if self._committed is None or offset > self._committed:
            self._committed = offset

    @property
    def in_flight(self) -> int:
        """Records fetched but not settled yet."""
        return len(self._unsettled)

    @property
    def first_fetched(self) -> int | None:
        return self._first_fetched

    @property
    def last_fetched(self) -> int | None:
        return self._last_fetched

    def reset(self, committed: int | None = None) -> None:
        """Forget everything (the partition was revoked or re-assigned, or the consumer seeked)."""
        self._pending.clear()
        self._unsettled.clear()
        self._last_fetched = None
        self._first_fetched = None
        self._committed = committed
