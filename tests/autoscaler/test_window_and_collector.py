"""Window averages (Knative's aggregation rules) and the time-weighted request collector."""

from __future__ import annotations

import pytest

from wisp.serving.autoscaler.metrics import RequestCollector
from wisp.serving.autoscaler.window import TimedBuckets


def test_average_over_partial_window_after_first_write() -> None:
    w = TimedBuckets(60.0)
    w.record(100.0, 10.0)
    w.record(101.0, 20.0)
    # Two valid buckets since the first write, not sixty.
    assert w.window_average(101.5) == pytest.approx((10 + 20) / 2)


def test_gaps_shorter_than_window_count_as_zero() -> None:
    w = TimedBuckets(10.0)
    w.record(0.0, 8.0)
    w.record(4.0, 8.0)
    assert w.window_average(4.0) == pytest.approx((8 + 0 + 0 + 0 + 8) / 5)


def test_stale_tail_is_not_counted() -> None:
    w = TimedBuckets(10.0)
    for t in range(10):
        w.record(float(t), 5.0)
    # Last write at 9; at 12 the buckets of 0..2 left the window and 10..12 have no data.
    assert w.window_average(12.0) == pytest.approx(5.0 * 7 / 7)


def test_window_full_rolls_old_values_out() -> None:
    w = TimedBuckets(4.0)
    for t, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]):
        w.record(float(t), v)
    assert w.window_average(5.0) == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_no_write_for_a_window_is_zero_and_resets_first_write() -> None:
    w = TimedBuckets(6.0)
    w.record(0.0, 9.0)
    assert w.window_average(7.0) == 0.0
    assert w.is_empty(7.0)
    w.record(20.0, 3.0)
    assert w.window_average(20.0) == pytest.approx(3.0)  # a burst after idleness counts at full weight


def test_resize_keeps_newest_buckets() -> None:
    w = TimedBuckets(10.0)
    for t in range(10):
        w.record(float(t), float(t))
    w.resize(4.0)
    assert w.window_average(9.0) == pytest.approx((6 + 7 + 8 + 9) / 4)


def test_two_half_second_requests_in_one_second_count_as_one() -> None:
    c = RequestCollector(stable_window=60.0, panic_window=6.0)
    c.request_started(10.0)
    c.request_finished(10.5)
    c.request_started(10.5)
    c.request_finished(11.0)
    c.flush(11.0, record_idle=False)
    stable, panic = c.averages(11.0, "concurrency")
    assert stable == pytest.approx(1.0)
    assert panic == pytest.approx(1.0)
    assert c.averages(11.0, "rps") == pytest.approx((2.0, 2.0))


def test_concurrency_is_integrated_across_second_boundaries() -> None:
    c = RequestCollector(stable_window=60.0, panic_window=6.0)
    c.request_started(10.75)  # 0.25 s in second 10, a full second 11, 0.5 s in second 12
    c.request_finished(12.5)
    c.flush(13.0, record_idle=True)
    stable, _ = c.averages(13.0, "concurrency")
    assert stable == pytest.approx((0.25 + 1.0 + 0.5) / 3)


def test_in_flight_request_keeps_contributing_until_it_ends() -> None:
    c = RequestCollector(stable_window=60.0, panic_window=6.0)
    for _ in range(3):
        c.request_started(0.0)
    c.flush(4.0, record_idle=True)
    assert c.averages(4.0, "concurrency")[0] == pytest.approx(3.0)
    assert c.last_active(4.0) == 4.0


def test_idle_seconds_recorded_only_with_instances() -> None:
    with_pods = RequestCollector(stable_window=60.0, panic_window=6.0)
    without = RequestCollector(stable_window=60.0, panic_window=6.0)
    for c, idle in ((with_pods, True), (without, False)):
        c.request_started(0.0)
        c.request_finished(1.0)
        for t in range(2, 6):
            c.flush(float(t), record_idle=idle)
    # Data in second 0 only; seconds 1..4 are zeros when instances were being scraped.
    assert with_pods.averages(5.0, "concurrency")[0] == pytest.approx(1.0 / 5)
    # Without instances the tail is not written: Knative averages only the valid (written) buckets.
    assert without.averages(5.0, "concurrency")[0] == pytest.approx(1.0)


def test_old_samples_are_pruned() -> None:
    c = RequestCollector(stable_window=6.0, panic_window=2.0)
    c.request_started(0.0)
    c.request_finished(0.5)
    c.flush(1.0, record_idle=False)
    c.flush(100.0, record_idle=True)
    assert c.averages(100.0, "concurrency") == (0.0, 0.0)
    assert not c._pending  # nothing left to flush


def test_finish_without_start_never_goes_negative() -> None:
    c = RequestCollector(stable_window=6.0, panic_window=2.0)
    c.request_finished(1.0)
    assert c.in_flight == 0


def test_one_second_panic_window_sees_the_last_completed_second() -> None:
    # Regression: read at `now`, the second in progress counted as a missing bucket, so a 1 s panic
    # window always averaged 0 and panic mode could never start.
    collector = RequestCollector(stable_window=6.0, panic_window=1.0)
    for _ in range(35):
        collector.request_started(0.0)
    collector.flush(1.0, record_idle=True)
    stable, panic = collector.averages(1.0, "concurrency")
    assert (stable, panic) == (35.0, 35.0)


def test_first_flush_records_no_idle_second_before_the_first_request() -> None:
    # Regression: the first flush recorded the previous second as idle, halving the first average.
    collector = RequestCollector(stable_window=6.0, panic_window=1.0)
    collector.flush(0.5, record_idle=True)
    for _ in range(10):
        collector.request_started(0.5)
    collector.flush(1.0, record_idle=True)
    assert collector.averages(1.0, "concurrency") == (5.0, 5.0)  # 10 in flight for half of second 0
