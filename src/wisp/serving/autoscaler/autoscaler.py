"""One revision's KPA: the request collector, its spec and the decider state, driven by the caller's clock.

The throttler calls `record_start`/`record_finish` for every request (queued ones included) and
`poke` when a request arrives while no instance is ready; the daemon calls `tick` every
`spec.tick_interval` seconds with the ready instance count and applies `Decision.desired`, except while
`idle_at_zero` (a revision at zero with no request: the tick could only decide 0 again).
Not thread-safe: call it from one event loop.
"""

from __future__ import annotations

from dataclasses import replace

from wisp.api.autoscaling.spec import ScalingSpec
from wisp.serving.autoscaler.decider import DeciderInputs, DeciderState, Decision, decide
from wisp.serving.autoscaler.metrics import RequestCollector


class RevisionAutoscaler:
    def __init__(
        self,
        spec: ScalingSpec,
        now: float,
        ready_instances: int = 0,
        initialized: bool = False,
    ) -> None:
        self.spec = spec
        self.collector = RequestCollector(spec.stable_window, spec.panic_window)
        self.state = DeciderState.initial(now, ready_instances, initialized=initialized)
        self.reachable = True  # some Route targets it; set by the data plane from the routing state
        self.last_decision: Decision | None = None
        self._ready = max(0, ready_instances)

    def record_start(self, now: float) -> None:
        """A request entered the throttler (running or queued)."""
        self.collector.request_started(now)

    def record_finish(self, now: float) -> None:
        """A request left the throttler (answered, failed or given up)."""
        self.collector.request_finished(now)

    def tick(self, now: float, ready_instances: int) -> Decision:
        """Decide the desired instance count from the windows up to `now`."""
        return self._decide(now, ready_instances, poked=False)

    def poke(self, now: float) -> Decision:
        """A request is waiting and no instance is ready: decide at once (at least activation-scale).

        Call `record_start` for the request first; a poke without one still counts one waiting request.
        """
        return self._decide(now, self._ready, poked=True)

    def idle_at_zero(self, instances: int) -> bool:
        """True when ticking cannot change anything until a request arrives (`poke`) or the spec changes: the
        last decision was 0 and was itself made with no ready instance, no instance exists (not even one
        draining), no request is in flight, and min-scale is 0 or does not apply (the revision is unreachable;
        the data plane wakes the ticks when a Route targets it again). Such a tick records nothing (idle seconds
        are recorded only while instances exist), the windows hold no request, and what the decider state still
        holds can only keep the count at 0 (panic and scale-down delay hold a count up, and expire by `now`,
        read at the next decision), so skipping ticks in this state changes no later decision. The decision
        that took the last instance away saw it ready: one tick at zero must follow, or the next poke would
        take the revision for active all along (and record the idle time as idle seconds)."""
        last = self.last_decision
        return (last is not None and last.desired == 0 and last.ready_instances == 0 and instances == 0
                and self.collector.in_flight == 0 and (self.spec.min_scale == 0 or not self.reachable))

    def update_spec(self, spec: ScalingSpec) -> None:
        """Apply changed annotations or config live; the windows keep their history."""
        if (spec.stable_window, spec.panic_window) != (self.spec.stable_window, self.spec.panic_window):
            self.collector.resize(spec.stable_window, spec.panic_window)
        if (spec.scale_down_delay, spec.tick_interval) != (
            self.spec.scale_down_delay,
            self.spec.tick_interval,
        ):
            self.state = replace(self.state, delay_window=())
        self.spec = spec

    def _decide(self, now: float, ready_instances: int, poked: bool) -> Decision:
        ready = max(0, ready_instances)
        self._ready = ready
        self.collector.flush(now, record_idle=ready > 0)
        stable, panic = self.collector.averages(now, self.spec.metric)
        held = self.collector.in_flight if ready == 0 else 0
        if poked and ready == 0:
            held = max(1, held)
        inputs = DeciderInputs(
            stable_value=stable,
            panic_value=panic,
            ready_instances=ready,
            held_requests=held,
            last_active_at=self.collector.last_active(now),
            reachable=self.reachable,
            in_flight=self.collector.in_flight,
        )
        decision = decide(self.spec, self.state, inputs, now)
        self.state = decision.state
        self.last_decision = decision
        return decision
