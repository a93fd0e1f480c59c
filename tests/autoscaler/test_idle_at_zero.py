"""Skipping ticks while a revision is idle at zero changes no decision (fake clock).

Two autoscalers see the same requests: one is ticked every 2 s, as Knative does; the other is not ticked
while `idle_at_zero` holds, as the data plane does. Instances follow the decision at once and a request at
zero pokes (the activator). Their instance counts must be equal at every moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wisp.api.autoscaling import AutoscalerConfig, resolve_scaling
from wisp.serving.autoscaler import RevisionAutoscaler

GROUP = "autoscaling.knative.dev"


@dataclass
class Sim:
    autoscaler: RevisionAutoscaler
    skip_idle: bool
    ready: int
    ticks: int = 0
    skipped: int = 0

    def tick(self, t: float) -> None:
        if self.skip_idle and self.autoscaler.idle_at_zero(self.ready):
            self.skipped += 1
            return
        self.ticks += 1
        self.ready = self.autoscaler.tick(t, self.ready).desired

    def start(self, t: float) -> None:
        self.autoscaler.record_start(t)
        if self.ready == 0:
            self.ready = self.autoscaler.poke(t).desired

    def finish(self, t: float) -> None:
        self.autoscaler.record_finish(t)


def requests(start: float, count: int, duration: float) -> list[tuple[float, int, str]]:
    """`count` requests that all start at `start` and last `duration` (order 0: finishes before starts)."""
    return [(start, 1, "start")] * count + [(start + duration, 0, "finish")] * count


TRAFFIC = sorted(
    requests(10.0, 5, 1.0)  # a little traffic at the start
    + requests(300.3, 1, 0.5)  # long after scale to zero: a cold request
    + [e for k in range(200) for e in requests(600.0 + k * 0.1, 30, 0.1)]  # a 20 s burst of 30 (panic)
    + requests(1500.7, 2, 3.0)  # cold again, after a long idle
    + requests(1510.2, 1, 0.2)  # while the instance from that one still runs
)


@pytest.mark.parametrize("annotations", [
    {},
    {f"{GROUP}/window": "6s"},
    {f"{GROUP}/scale-down-delay": "30s"},
    {f"{GROUP}/scale-to-zero-pod-retention-period": "45s"},
    {f"{GROUP}/activation-scale": "2"},
    {f"{GROUP}/initial-scale": "0"},
    {f"{GROUP}/metric": "rps", f"{GROUP}/target": "5"},
    {f"{GROUP}/panic-window-percentage": "20", f"{GROUP}/panic-threshold-percentage": "150"},
])
def test_skipping_idle_ticks_at_zero_decides_the_same(annotations: dict[str, str]) -> None:
    config = AutoscalerConfig(allow_zero_initial_scale=True)
    spec = resolve_scaling(annotations, 10, config)
    start = max(spec.min_scale, spec.initial_scale)
    always = Sim(RevisionAutoscaler(spec, now=0.0), skip_idle=False, ready=start)
    skipping = Sim(RevisionAutoscaler(spec, now=0.0), skip_idle=True, ready=start)
    events = iter(TRAFFIC)
    event = next(events, None)
    tick = 2.0
    while tick <= 2000.0:
        while event is not None and event[0] <= tick:
            t, _, what = event
            for sim in (always, skipping):
                sim.start(t) if what == "start" else sim.finish(t)
            assert always.ready == skipping.ready, f"after a request {what} at {t}"
            event = next(events, None)
        for sim in (always, skipping):
            sim.tick(tick)
        assert always.ready == skipping.ready, f"at the tick at {tick}"
        tick += 2.0
    assert always.ready == 0
    # The skipping one really was idle most of the time (three idle stretches of minutes each).
    assert skipping.skipped > 500
    assert always.skipped == 0


def test_never_idle_while_instances_requests_or_min_scale() -> None:
    config = AutoscalerConfig()
    a = RevisionAutoscaler(resolve_scaling({}, 10, config), now=0.0, ready_instances=1, initialized=True)
    assert not a.idle_at_zero(0)  # never decided: a first tick is due
    assert a.tick(100.0, 1).desired == 0
    assert not a.idle_at_zero(0)  # that decision still saw the last instance: one tick at zero is due
    assert a.tick(102.0, 0).desired == 0
    assert a.idle_at_zero(0)
    assert not a.idle_at_zero(1)  # an instance still exists (draining, say)
    a.record_start(101.0)
    assert not a.idle_at_zero(0)  # a request is in flight
    a.record_finish(101.5)
    a.poke(101.0)
    assert not a.idle_at_zero(0)  # the last decision is not 0

    pinned = RevisionAutoscaler(resolve_scaling({f"{GROUP}/min-scale": "1"}, 10, config), now=0.0,
                                initialized=True)
    assert not pinned.idle_at_zero(0)  # min-scale 1: a tick brings it back to 1
    pinned.reachable = False  # unrouted: min-scale does not apply...
    assert pinned.tick(100.0, 0).desired == 0
    assert pinned.idle_at_zero(0)  # ...so nothing is left to tick for; the data plane wakes it when routed again
    pinned.reachable = True
    assert not pinned.idle_at_zero(0)
    assert pinned.tick(102.0, 0).desired == 1
