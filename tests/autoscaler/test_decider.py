"""The KPA decision, table-driven on a fake clock; expected numbers come from Knative's formulas here."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from wisp.api.autoscaling.spec import ScalingSpec
from wisp.serving.autoscaler.decider import DeciderInputs, DeciderState, Decision, decide

# containerConcurrency 10 at 70 % utilization: T = 7.
SPEC = ScalingSpec(
    target_value=10 * 0.7,
    total_value=10,
    container_concurrency=10,
    initial_scale=0,  # most cases start past initial scale
)
T = 10 * 0.7


def run(
    spec: ScalingSpec,
    state: DeciderState,
    now: float,
    stable: float,
    panic: float | None = None,
    ready: int = 1,
    **extra: object,
) -> Decision:
    inputs = DeciderInputs(
        stable_value=stable,
        panic_value=stable if panic is None else panic,
        ready_instances=ready,
        last_active_at=extra.pop("last_active_at", now),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )
    return decide(spec, state, inputs, now)


def fresh(now: float = 0.0, ready: int = 1) -> DeciderState:
    return DeciderState.initial(now, ready, initialized=True)


@pytest.mark.parametrize(
    ("concurrency", "ready"),
    [(35, 5), (35, 4), (70, 10), (6.9, 1), (7.1, 1), (100, 8), (1, 3)],
)
def test_steady_state_is_ceil_of_concurrency_over_target(concurrency: float, ready: int) -> None:
    d = run(SPEC, replace(fresh(), panic_time=None, max_panic_pods=0), 100.0, concurrency, ready=ready)
    r = max(1, ready)
    want = min(max(math.ceil(concurrency / T), math.floor(r / 2.0)), math.ceil(1000.0 * r))
    assert d.desired == want
    assert d.panicking == (math.ceil(concurrency / T) / r >= 2.0)


def test_example_35_clients_settle_at_5() -> None:
    d = run(SPEC, fresh(ready=5), 100.0, 35.0, ready=5)
    assert d.desired == math.ceil(35 / (10 * 0.7)) == 5


def test_scale_up_rate_bound() -> None:
    spec = replace(SPEC, max_scale_up_rate=2.0, panic_threshold=1000.0)
    d = run(spec, fresh(ready=3), 10.0, 1000.0, ready=3)
    assert d.desired == math.ceil(2.0 * 3)


def test_scale_up_rate_grows_at_least_one_pod() -> None:
    # Knative's MSUR=1.1 case: ceil(1.1*2) = 3 lets a 2-pod revision still grow.
    spec = replace(SPEC, max_scale_up_rate=1.1, target_value=1.0, panic_threshold=1000.0)
    d = run(spec, fresh(ready=2), 10.0, 3.0, ready=2)
    assert d.desired == math.ceil(1.1 * 2) == 3


def test_scale_down_rate_bound() -> None:
    state = replace(fresh(ready=10), panic_time=None, max_panic_pods=0)
    d = run(SPEC, state, 10.0, 0.5, ready=10)
    assert d.desired == math.floor(10 / 2.0)


# An unreachable revision (no Route targets it): zero once no request is left in it, whatever holds a
# reachable one up; until then it keeps what it has.
PINNED = replace(SPEC, min_scale=3, initial_scale=5, scale_down_delay=60.0)
PANICKING = replace(fresh(ready=10), panic_time=9.0, max_panic_pods=10)
DELAYED = replace(fresh(ready=5), delay_window=((4, 5),))
UNINITIALIZED = DeciderState.initial(0.0, 0, initialized=False)


@pytest.mark.parametrize(
    ("spec", "state", "ready", "extra", "want", "reason"),
    [
        (SPEC, fresh(ready=10), 10, {}, 0, "unreachable"),  # no scale-down rate bound either
        (SPEC, fresh(ready=10), 10, {"in_flight": 2}, 10, "unreachable: 2 requests still in it"),
        (SPEC, fresh(ready=0), 0, {"in_flight": 1}, 1, "unreachable: 1 request still in it"),
        (SPEC, fresh(ready=0), 0, {"held_requests": 1}, 1, "unreachable: 1 request still in it"),  # a poke
        (PINNED, fresh(ready=3), 3, {}, 0, "unreachable"),  # min-scale does not apply
        (PINNED, UNINITIALIZED, 0, {}, 0, "unreachable"),  # nor initial scale
        (SPEC, PANICKING, 10, {}, 0, "unreachable"),  # nor panic mode's hold
        (PINNED, DELAYED, 5, {}, 0, "unreachable"),  # nor the scale-down delay
        (replace(SPEC, enable_scale_to_zero=False), fresh(ready=2), 2, {}, 1,
         "unreachable, scale to zero disabled"),  # as Knative's scaler: 1 when scale to zero is off
        (replace(SPEC, max_scale=2), fresh(ready=5), 5, {"in_flight": 9}, 2, "unreachable: 9 requests still in it"),
    ],
)
def test_unreachable_revision_goes_to_zero_once_its_requests_are_done(
    spec: ScalingSpec, state: DeciderState, ready: int, extra: dict[str, int], want: int, reason: str
) -> None:
    # A full stable window of history (50 concurrent) predicts nothing: no Route can send more.
    d = run(spec, state, 10.0, 50.0, ready=ready, reachable=False, **extra)
    assert (d.desired, d.reason) == (want, reason)
    assert not d.panicking and d.state.panic_time is None and d.state.delay_window == ()


def test_reachable_again_holds_min_scale_and_the_rate_bound() -> None:
    gone = run(PINNED, fresh(ready=10), 10.0, 0.0, ready=10, reachable=False)
    assert gone.desired == 0
    back = run(PINNED, replace(gone.state, initialized=True), 12.0, 0.0, ready=10)
    assert back.desired == max(3, math.floor(10 / 2.0))  # the scale-down rate bound and min-scale are back


def test_panic_entry_at_threshold() -> None:
    # ceil(P/T)/R >= 2 starts panic mode: P = 14 with one pod gives exactly 2.
    d = run(SPEC, fresh(), 10.0, stable=1.0, panic=2 * T, ready=1)
    assert d.panicking
    assert d.desired == math.ceil(2 * T / T)
    below = run(SPEC, fresh(), 10.0, stable=1.0, panic=T, ready=1)
    assert not below.panicking


def test_panic_uses_larger_of_stable_and_panic() -> None:
    d = run(SPEC, fresh(), 10.0, stable=50.0, panic=30.0, ready=1)
    assert d.panicking
    assert d.desired == max(math.ceil(50.0 / T), math.ceil(30.0 / T))


def test_never_scales_down_while_panicking_and_exits_after_stable_window() -> None:
    state = fresh(ready=1)
    d = run(SPEC, state, 0.0, stable=10.0, panic=70.0, ready=1)
    assert d.panicking and d.desired == math.ceil(70.0 / T)
    peak = d.desired
    # Load drops: still panicking, the count holds at the peak.
    t = 2.0
    d = run(SPEC, d.state, t, stable=10.0, panic=7.0, ready=peak)
    assert d.panicking and d.desired == peak
    # Last over-threshold moment was t=0; panic ends once 0 + 60 < now, not at 60 itself.
    d = run(SPEC, d.state, 60.0, stable=10.0, panic=7.0, ready=peak)
    assert d.panicking and d.desired == peak
    d = run(SPEC, d.state, 60.5, stable=10.0, panic=7.0, ready=peak)
    assert not d.panicking
    assert d.desired == max(math.ceil(10.0 / T), math.floor(peak / 2.0))


def test_panic_extends_while_threshold_holds() -> None:
    d = run(SPEC, fresh(), 0.0, stable=1.0, panic=14.0, ready=1)
    d = run(SPEC, d.state, 50.0, stable=1.0, panic=14.0, ready=1)  # still over: panic time moves to 50
    d = run(SPEC, d.state, 100.0, stable=1.0, panic=1.0, ready=2)
    assert d.panicking  # 50 + 60 >= 100
    d = run(SPEC, d.state, 111.0, stable=1.0, panic=1.0, ready=2)
    assert not d.panicking


def test_restart_with_many_instances_starts_in_panic() -> None:
    state = DeciderState.initial(0.0, ready_instances=4, initialized=True)
    d = run(SPEC, state, 2.0, stable=0.0, panic=0.0, ready=4)
    assert d.panicking and d.desired == 4


def test_scale_down_delay_holds_the_max_over_the_delay() -> None:
    spec = replace(SPEC, scale_down_delay=10.0, tick_interval=2.0)
    state = replace(fresh(ready=5), panic_time=None, max_panic_pods=0)
    d = run(spec, state, 0.0, stable=35.0, ready=5)
    assert d.desired == 5
    # Load halves: stable wants ceil(14/7)=2 (within the scale-down bound floor(5/2)=2).
    for now in (2.0, 4.0, 6.0, 8.0):
        d = run(spec, d.state, now, stable=14.0, ready=5)
        assert d.desired == 5, now
    # 10 s / 2 s = 5 tick buckets: the bucket of t=0 leaves the window at t=10.
    d = run(spec, d.state, 10.0, stable=14.0, ready=5)
    assert d.desired == max(math.ceil(14.0 / T), math.floor(5 / 2.0))


def test_scale_down_delay_does_not_delay_scale_up() -> None:
    spec = replace(SPEC, scale_down_delay=30.0, panic_threshold=10.0)
    state = replace(fresh(ready=2), panic_time=None, max_panic_pods=0)
    d = run(spec, state, 0.0, stable=7.0, ready=2)
    d = run(spec, d.state, 2.0, stable=42.0, ready=2)
    assert d.desired == math.ceil(42.0 / T)


def test_grace_period_before_zero() -> None:
    spec = replace(SPEC, stable_window=60.0, scale_to_zero_grace_period=30.0)
    state = replace(fresh(now=0.0, ready=1), panic_time=None)
    last = 100.0
    d = run(spec, state, 120.0, stable=0.0, ready=1, last_active_at=last)
    assert d.desired == 1 and "grace" in d.reason
    d = run(spec, d.state, last + 30.0, stable=0.0, ready=1, last_active_at=last)
    assert d.desired == 0


def test_active_for_less_than_stable_window_keeps_one() -> None:
    # A revision that just came up with no traffic stays one stable window (Knative's ActiveFor).
    state = DeciderState.initial(0.0, 0, initialized=True)
    d = run(SPEC, state, 1.0, stable=0.0, ready=1, last_active_at=None)
    assert d.desired == 1
    d = run(SPEC, d.state, 1.0 + SPEC.stable_window - 0.5, stable=0.0, ready=1, last_active_at=None)
    assert d.desired == 1
    d = run(SPEC, d.state, 1.0 + SPEC.stable_window, stable=0.0, ready=1, last_active_at=None)
    assert d.desired == 0


def test_pod_retention_period_after_zero_is_wanted() -> None:
    spec = replace(SPEC, scale_to_zero_pod_retention_period=20.0)
    state = replace(fresh(now=0.0), panic_time=None)
    d = run(spec, state, 100.0, stable=0.0, ready=1, last_active_at=0.0)
    assert d.desired == 1 and "retention" in d.reason
    d = run(spec, d.state, 119.0, stable=0.0, ready=1, last_active_at=0.0)
    assert d.desired == 1
    d = run(spec, d.state, 120.0, stable=0.0, ready=1, last_active_at=0.0)
    assert d.desired == 0


def test_scale_to_zero_disabled_keeps_one() -> None:
    spec = replace(SPEC, enable_scale_to_zero=False)
    d = run(spec, replace(fresh(), panic_time=None), 1000.0, stable=0.0, ready=0, last_active_at=0.0)
    assert d.desired == 1


@pytest.mark.parametrize(
    ("concurrency", "min_scale", "max_scale"),
    [(0.0, 2, 0), (700.0, 0, 3), (35.0, 6, 10), (35.0, 1, 4)],
)
def test_min_max_clamps(concurrency: float, min_scale: int, max_scale: int) -> None:
    spec = replace(SPEC, min_scale=min_scale, max_scale=max_scale, panic_threshold=1000.0)
    state = replace(fresh(ready=5), panic_time=None, max_panic_pods=0)
    d = run(spec, state, 1000.0, stable=concurrency, ready=5, last_active_at=0.0)
    raw = max(math.ceil(concurrency / T), math.floor(5 / 2.0))
    want = max(raw, min_scale)
    if max_scale:
        want = min(want, max_scale)
    assert d.desired == want


def test_initial_scale_until_reached() -> None:
    spec = replace(SPEC, initial_scale=3)
    state = DeciderState.initial(0.0, 0)
    d = run(spec, state, 0.0, stable=0.0, ready=0, last_active_at=None)
    assert d.desired == 3
    d = run(spec, d.state, 2.0, stable=0.0, ready=2, last_active_at=None)
    assert d.desired == 3
    d = run(spec, d.state, 4.0, stable=0.0, ready=3, last_active_at=None)
    assert d.state.initialized
    # Reached once: from now on ordinary rules (scale-down bound floor(3/2)).
    d = run(spec, d.state, 6.0, stable=0.0, ready=3, last_active_at=None)
    assert d.desired == math.floor(3 / 2.0)


def test_held_requests_at_zero_scale_up_at_once() -> None:
    state = replace(fresh(ready=0), panic_time=None)
    d = run(SPEC, state, 5.0, stable=0.0, ready=0, held_requests=1)
    assert d.desired == 1
    d = run(SPEC, state, 5.0, stable=0.0, ready=0, held_requests=35)
    assert d.desired == math.ceil(35 / T) and d.panicking


def test_activation_scale_from_zero() -> None:
    spec = replace(SPEC, activation_scale=3)
    state = replace(fresh(ready=0), panic_time=None)
    d = run(spec, state, 5.0, stable=0.0, ready=0, held_requests=1)
    assert d.desired == 3
    # With no demand at all the activation scale does not apply.
    d = run(spec, state, 5.0, stable=0.0, ready=0, last_active_at=0.0)
    assert d.desired == 0


def test_activation_scale_capped_by_max_scale() -> None:
    spec = replace(SPEC, activation_scale=5, max_scale=2)
    state = replace(fresh(ready=0), panic_time=None)
    d = run(spec, state, 5.0, stable=0.0, ready=0, held_requests=1)
    assert d.desired == 2


def test_rps_metric_scales_on_request_rate() -> None:
    # rps target 200 at 70 %: T = 140 requests per second per instance.
    spec = replace(SPEC, metric="rps", target_value=200 * 0.7, total_value=200)
    state = replace(fresh(ready=2), panic_time=None, max_panic_pods=0)
    d = run(spec, state, 10.0, stable=1000.0, panic=1000.0, ready=4)
    assert d.desired == math.ceil(1000 / (200 * 0.7))


def test_excess_burst_capacity() -> None:
    state = replace(fresh(ready=3), panic_time=None, max_panic_pods=0)
    d = run(SPEC, state, 1.0, stable=10.0, panic=12.0, ready=3)
    assert d.excess_burst_capacity == math.floor(3 * 10 - 211 - 12.0)
    d0 = run(replace(SPEC, target_burst_capacity=0), state, 1.0, stable=10.0, ready=3)
    assert d0.excess_burst_capacity == 0
    dinf = run(replace(SPEC, target_burst_capacity=-1), state, 1.0, stable=10.0, ready=3)
    assert dinf.excess_burst_capacity == -1


def test_decision_is_pure() -> None:
    state = fresh(ready=2)
    inputs = DeciderInputs(stable_value=20.0, panic_value=30.0, ready_instances=2, last_active_at=3.0)
    first = decide(SPEC, state, inputs, 4.0)
    second = decide(SPEC, state, inputs, 4.0)
    assert first == second
    assert state == fresh(ready=2)  # input state untouched


def test_describe_names_the_inputs() -> None:
    d = run(SPEC, fresh(ready=5), 100.0, 35.0, ready=5)
    text = d.describe()
    for part in ("desired=5", "ready=5", "stable=35.000", "panic=35.000", "mode="):
        assert part in text
