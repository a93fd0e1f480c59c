"""The pure offset tracker: commit only up to the last offset with no unsettled record before it."""

from __future__ import annotations

import pytest

from wisp.eventing.offsets import PartitionOffsets


def test_nothing_fetched_nothing_to_commit() -> None:
    assert PartitionOffsets().committable() is None


def test_in_order_settlement() -> None:
    t = PartitionOffsets()
    for o in (0, 1, 2):
        t.fetched(o)
    assert t.committable() is None
    t.settled(0)
    assert t.committable() == 1
    t.settled(1)
    t.settled(2)
    assert t.committable() == 3
    assert t.in_flight == 0


def test_out_of_order_settlement_waits_for_the_gap() -> None:
    t = PartitionOffsets()
    for o in (10, 11, 12, 13):
        t.fetched(o)
    t.settled(12)
    t.settled(13)
    assert t.committable() is None  # 10 still unsettled
    t.settled(10)
    assert t.committable() == 11  # 11 still unsettled
    t.settled(11)
    assert t.committable() == 14


def test_gaps_in_offsets_are_fine() -> None:
    t = PartitionOffsets()
    t.fetched(5)
    t.fetched(9)  # 6..8 compacted away
    t.settled(5)
    assert t.committable() == 9
    t.settled(9)
    assert t.committable() == 10


def test_committed_suppresses_repeat_and_reset_forgets() -> None:
    t = PartitionOffsets()
    t.fetched(0)
    t.settled(0)
    assert t.committable() == 1
    t.committed(1)
    assert t.committable() is None
    t.fetched(1)
    assert t.committable() is None
    t.settled(1)
    assert t.committable() == 2
    t.reset()
    assert t.committable() is None
    t.fetched(0)  # re-fetching after a reset is allowed
    with pytest.raises(ValueError):
        t.fetched(0)
