"""The adaptive fetch wait on a fake clock, and how it reaches an aiokafka consumer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wisp.eventing.fetch_wait import AdaptiveFetchWait, set_fetch_wait


def test_short_while_records_flow_and_through_short_pauses() -> None:
    wait = AdaptiveFetchWait(short=0.01, long=0.5, fraction=0.05, hold=2.0, since=100.0)
    for t in (100.0, 100.05, 101.5, 103.4):
        wait.records(t)
        assert wait.wait(t) == 0.01
        assert wait.wait(t + 1.9) == 0.01  # a pause of under `hold` seconds changes nothing


@pytest.mark.parametrize(("idle", "expected"), [(0.0, 0.01), (1.0, 0.01), (2.0, 0.01), (2.2, 0.01), (3.0, 0.05),
                                                (6.0, 0.2), (12.0, 0.5), (3600.0, 0.5)])
def test_grows_with_idle_time_beyond_the_hold_up_to_the_cap(idle: float, expected: float) -> None:
    wait = AdaptiveFetchWait(short=0.01, long=0.5, fraction=0.05, hold=2.0, since=0.0)
    assert wait.wait(idle) == pytest.approx(expected)


def test_records_after_a_long_idle_make_it_short_at_once() -> None:
    wait = AdaptiveFetchWait(short=0.01, long=0.5, fraction=0.05, since=0.0)
    assert wait.wait(600.0) == 0.5
    wait.records(600.2)
    assert wait.wait(600.2) == 0.01


def test_a_started_consumer_counts_as_active_at_start() -> None:
    # Records sent right after a source is Ready must not wait for an idle-length fetch.
    wait = AdaptiveFetchWait(since=50.0)
    assert wait.wait(50.0) == wait.short


def test_set_fetch_wait_changes_the_fetchers_wait_in_ms() -> None:
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=10))
    set_fetch_wait(consumer, 0.25)
    assert consumer._fetcher._fetch_max_wait_ms == 250
    set_fetch_wait(consumer, 0.0001)
    assert consumer._fetcher._fetch_max_wait_ms == 1  # never 0: that would be a busy loop of fetches


def test_set_fetch_wait_leaves_a_consumer_without_a_fetcher_alone() -> None:
    consumer = SimpleNamespace(_fetcher=None)
    set_fetch_wait(consumer, 0.25)  # not started yet: nothing to change, no error
    assert consumer._fetcher is None
