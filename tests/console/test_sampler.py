"""The console's series and decision log, on a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wisp.console.sampler import DECISIONS_KEPT, LATENCIES_KEPT, POINTS_KEPT, RequestStats, Sampler
from wisp.console.sources import DecisionReading, RevisionReading


def reading(desired: int = 1, ready: int = 1, in_flight: int = 0, decision: DecisionReading | None = None,
            revision: str = "hello-00001") -> RevisionReading:
    return RevisionReading("default", revision, "hello", desired, ready, in_flight, 0, decision)


def decision(desired: int, stable: float = 1.0, panicking: bool = False) -> DecisionReading:
    return DecisionReading(desired, 1, panicking, stable, stable, 10.0, desired, desired, 5, "stable")


def test_a_point_sums_revisions_and_takes_requests_per_second_and_percentiles() -> None:
    stats = RequestStats()
    for ms in range(1, 101):
        stats.request_done(("default", "hello-00001"), 200, ms / 1000)
    stats.request_done(("default", "hello-00002"), 503, 0.5)
    sampler = Sampler()
    changed = sampler.sample(100.0, [reading(2, 1), reading(1, 1, revision="hello-00002")], stats.drain(), 2.0)
    assert changed == {("default", "hello")}
    point = sampler.last_point[("default", "hello")]
    assert point["desired"] == 3 and point["ready"] == 2
    assert point["rps"] == 50.5  # 101 requests in 2 s
    # ms, nearest rank over all 101 requests of both revisions (the slow 503 is the 101st)
    assert point["p50"] == pytest.approx(51.0) and point["p99"] == pytest.approx(100.0)
    assert stats.drain() == {}  # drained: the next interval starts empty


def test_no_request_means_no_latency_rather_than_zero() -> None:
    sampler = Sampler()
    sampler.sample(1.0, [reading()], {}, 1.0)
    series = sampler.series(("default", "hello"))
    assert series["p50"] == [None] and series["rps"] == [0.0]


def test_an_idle_service_moves_its_last_point_instead_of_growing() -> None:
    sampler = Sampler()
    key = ("default", "hello")
    sampler.sample(0.0, [reading(1, 1)], {}, 1.0)
    for t in range(1, 50):
        sampler.sample(float(t), [reading(0, 0)], {}, 1.0)
    times = sampler.series(key)["t"]
    assert times == [0.0, 1.0, 49.0]  # active, first idle, the idle stretch's end
    sampler.sample(50.0, [reading(2, 1)], {}, 1.0)
    assert sampler.series(key)["t"][-1] == 50.0 and sampler.series(key)["desired"][-1] == 2


def test_a_never_active_service_keeps_no_series_and_the_ring_is_bounded() -> None:
    sampler = Sampler()
    sampler.sample(0.0, [reading(0, 0)], {}, 1.0)
    assert sampler.series(("default", "hello"))["t"] == []
    for t in range(POINTS_KEPT + 40):
        sampler.sample(float(t), [reading(1 + t % 2, 1)], {}, 1.0)
    series = sampler.series(("default", "hello"))
    assert len(series["t"]) == POINTS_KEPT and series["t"][-1] == POINTS_KEPT + 39
    assert sampler.series(("default", "hello"), since=POINTS_KEPT + 38)["t"] == [POINTS_KEPT + 38, POINTS_KEPT + 39]


def test_decisions_are_logged_once_each_with_their_inputs_and_bounded() -> None:
    sampler = Sampler()
    key = ("default", "hello")
    sampler.sample(0.0, [reading(decision=decision(1))], {}, 1.0)
    sampler.sample(1.0, [reading(decision=decision(1))], {}, 1.0)  # the same decision seen again
    sampler.sample(2.0, [reading(decision=decision(3, 25.0, panicking=True))], {}, 1.0)
    log = sampler.decisions(key)
    assert [(d["t"], d["desired"], d["mode"]) for d in log] == [(0.0, 1, "stable"), (2.0, 3, "panic")]
    assert log[1]["stable"] == 25.0 and log[1]["target"] == 10.0 and log[1]["reason"] == "stable"
    assert sampler.series(key)["panicking"][-1] == 1.0
    for t in range(3, 3 + DECISIONS_KEPT * 2):
        sampler.sample(float(t), [reading(decision=decision(t))], {}, 1.0)
    assert len(sampler.decisions(key)) == DECISIONS_KEPT
    sampler.forget(key)
    assert sampler.decisions(key) == [] and sampler.series(key)["t"] == []


@given(st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), min_size=1, max_size=LATENCIES_KEPT * 3))
def test_request_stats_count_every_request_and_keep_a_bounded_sample(latencies: list[float]) -> None:
    stats = RequestStats(random.Random(7))
    for seconds in latencies:
        stats.request_done(("default", "r"), 200, seconds)
    [done] = stats.drain().values()
    assert done.count == len(latencies)
    assert len(done.latencies) == min(len(latencies), LATENCIES_KEPT)
    assert set(done.latencies) <= set(latencies)


def test_forgetting_a_service_keeps_the_decisions_of_one_whose_name_it_prefixes() -> None:
    # Services `a` and `a-b`: revisions `a-00001` and `a-b-00001`. Forgetting `a` must not make `a-b`'s unchanged
    # decision look new (it would be logged twice).
    sampler = Sampler()
    a = RevisionReading("default", "a-00001", "a", 1, 1, 0, 0, decision(1))
    a_b = RevisionReading("default", "a-b-00001", "a-b", 2, 2, 0, 0, decision(2))
    sampler.sample(1.0, [a, a_b], {}, 1.0)
    sampler.forget(("default", "a"))
    sampler.sample(2.0, [a_b], {}, 1.0)
    assert len(sampler.decisions(("default", "a-b"))) == 1
