"""The assembled per-revision autoscaler on a fake clock: collector → windows → decider."""

from __future__ import annotations

import math
from dataclasses import replace

from wisp.api.autoscaling import AutoscalerConfig, resolve_scaling
from wisp.serving.autoscaler import RevisionAutoscaler


def drive_closed_loop(
    a: RevisionAutoscaler, clients: int, service_time: float, start: float, end: float
) -> int:
    """`clients` always-busy clients on a fake clock; tick every 2 s; ready follows desired at once."""
    t = start
    for _ in range(clients):
        a.record_start(t)
    ready = a.poke(t).desired
    next_tick = t + 2.0
    while t < end:
        t = round(t + service_time, 6)
        for _ in range(clients):
            a.record_finish(t)
            a.record_start(t)
        if t >= next_tick:
            ready = a.tick(t, ready).desired
            next_tick += 2.0
    return ready


def test_35_clients_on_concurrency_10_settle_at_5() -> None:
    spec = resolve_scaling({}, container_concurrency=10, config=AutoscalerConfig())
    a = RevisionAutoscaler(spec, now=0.0)
    ready = drive_closed_loop(a, clients=35, service_time=0.1, start=100.0, end=300.0)
    assert ready == math.ceil(35 / (10 * 0.7))
    assert a.last_decision is not None and not a.last_decision.panicking


def test_poke_at_zero_gives_activation_scale_at_once() -> None:
    spec = resolve_scaling({"autoscaling.knative.dev/activation-scale": "3"}, 0, AutoscalerConfig())
    a = RevisionAutoscaler(spec, now=0.0, initialized=True)
    a.record_start(500.0)
    d = a.poke(500.0)
    assert d.desired == 3


def test_poke_without_recorded_request_still_scales_up() -> None:
    spec = resolve_scaling({}, 0, AutoscalerConfig())
    a = RevisionAutoscaler(spec, now=0.0, initialized=True)
    assert a.poke(500.0).desired == 1


def test_idle_revision_goes_to_zero_after_stable_window_and_grace() -> None:
    spec = resolve_scaling({}, 10, AutoscalerConfig())
    a = RevisionAutoscaler(spec, now=0.0)
    a.record_start(0.0)
    ready = a.poke(0.0).desired
    a.record_finish(0.2)
    last = 0.2
    t = 0.0
    seen_zero_at = None
    while t < 200.0:
        t += 2.0
        d = a.tick(t, ready)
        ready = d.desired
        if ready == 0 and seen_zero_at is None:
            seen_zero_at = t
    assert seen_zero_at is not None
    # The stable average only reaches 0 once second 0 leaves the 60 s window; grace (30 s) is shorter.
    assert seen_zero_at >= last + max(spec.scale_to_zero_grace_period, spec.stable_window) - 1.0
    assert seen_zero_at <= last + spec.stable_window + 2 * spec.tick_interval


def test_update_spec_changes_target_live() -> None:
    config = AutoscalerConfig()
    a = RevisionAutoscaler(resolve_scaling({}, 10, config), now=0.0, initialized=True)
    ready = drive_closed_loop(a, clients=35, service_time=0.1, start=0.0, end=150.0)
    assert ready == math.ceil(35 / 7)
    a.update_spec(resolve_scaling({"autoscaling.knative.dev/target": "5"}, 10, config))
    t = 150.0
    for _ in range(40):
        t += 2.0
        for _ in range(35):
            a.record_finish(t)
            a.record_start(t)
        ready = a.tick(t, ready).desired
    assert ready == math.ceil(35 / (5 * 0.7))


def test_update_spec_resizes_windows() -> None:
    config = AutoscalerConfig()
    a = RevisionAutoscaler(resolve_scaling({}, 10, config), now=0.0)
    new = resolve_scaling({"autoscaling.knative.dev/window": "10s"}, 10, config)
    a.update_spec(new)
    assert a.spec == new
    assert a.spec.panic_window == 1.0  # 10 % of 10 s
    assert replace(a.spec) == new


def test_unreachable_ignores_min_scale_once_its_requests_are_done() -> None:
    """Fake clock: a min-scale 2 revision under load loses its Route; it keeps its instances while a request is
    still in it, then goes to 0 at the next tick (no stable window, no grace), and comes back to min-scale when a
    Route targets it again."""
    spec = resolve_scaling({"autoscaling.knative.dev/min-scale": "2"}, 10, AutoscalerConfig())
    a = RevisionAutoscaler(spec, now=0.0, ready_instances=2, initialized=True)
    ready = drive_closed_loop(a, clients=20, service_time=0.1, start=100.0, end=160.0)
    assert ready >= 2
    for _ in range(19):
        a.record_finish(160.0)  # one request is still running when the Route lets go
    a.reachable = False
    assert a.tick(162.0, ready).desired == ready
    a.record_finish(163.0)
    gone = a.tick(164.0, ready)
    assert (gone.desired, gone.reason) == (0, "unreachable")
    assert a.tick(166.0, 0).desired == 0 and a.idle_at_zero(0)
    a.reachable = True
    assert a.tick(168.0, 0).desired >= 2  # min-scale holds again (and the window's history counts again)
