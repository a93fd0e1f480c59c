"""The KPA decision: a pure function of the spec, the previous state, this tick's inputs and `now`.

It follows Knative's `scaling.autoscaler.Scale` (rate bounds, panic mode, activation scale,
scale-down delay, excess burst capacity) and then the KPA scaler's last steps (scale to zero only
after the grace and retention periods, initial scale until reached, min/max bounds):

    T       = spec.target_value
    R       = max(1, ready)
    stable  = clamp(ceil(S/T), floor(R/maxDown), ceil(maxUp·R))
    panic   = clamp(ceil(P/T), same bounds)
    panicking starts when ceil(P/T)/R >= threshold and ends one stable window after it last held;
    while panicking the count never drops.

A revision no Route targets (unreachable) is decided apart: zero once the requests still in it are done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from wisp.api.autoscaling.spec import ScalingSpec


@dataclass(frozen=True)
class DeciderState:
    """What the decider remembers between ticks."""

    created_at: float
    panic_time: float | None = None  # last time the panic threshold held while panicking
    max_panic_pods: int = 0
    # Scale-down delay: a descending-maxima window of (tick bucket, desired) pairs.
    delay_window: tuple[tuple[int, int], ...] = ()
    zero_wanted_since: float | None = None  # since when the autoscaler has wanted 0 instances
    active_since: float | None = None  # since when at least one instance has been ready
    initialized: bool = False  # initial scale has been reached once

    @classmethod
    def initial(cls, now: float, ready_instances: int = 0, initialized: bool = False) -> DeciderState:
        """A fresh state. Like Knative, start in panic mode when more than one instance already runs
        (after a daemon restart) so the lost metric history cannot cause a sudden scale-down."""
        return cls(
            created_at=now,
            panic_time=now if ready_instances > 1 else None,
            max_panic_pods=max(0, ready_instances),
            active_since=now if ready_instances > 0 else None,
            initialized=initialized,
        )


@dataclass(frozen=True)
class DeciderInputs:
    """One tick's observations."""

    stable_value: float  # S: concurrency (or rps) averaged over the stable window
    panic_value: float  # P: the same over the panic window
    ready_instances: int
    # Requests waiting for an instance while none is ready (activator); they count at once.
    held_requests: int = 0
    last_active_at: float | None = None  # last request start/finish; now while any is in flight
    reachable: bool = True  # some Route targets it (routing state active or pending)
    in_flight: int = 0  # requests in the revision now, running or waiting


@dataclass(frozen=True)
class Decision:
    desired: int
    panicking: bool
    stable_value: float
    panic_value: float
    stable_desired: int
    panic_desired: int
    excess_burst_capacity: int
    ready_instances: int
    target_value: float
    reason: str
    state: DeciderState = field(repr=False)

    def describe(self) -> str:
        """One log line with the inputs that led to the decision."""
        mode = "panic" if self.panicking else "stable"
        return (
            f"desired={self.desired} ready={self.ready_instances} mode={mode} "
            f"stable={self.stable_value:.3f} panic={self.panic_value:.3f} target={self.target_value:.3f} "
            f"stable_pods={self.stable_desired} panic_pods={self.panic_desired} "
            f"ebc={self.excess_burst_capacity} reason={self.reason}"
        )


def _record_delay(
    window: tuple[tuple[int, int], ...], bucket: int, value: int, size: int
) -> tuple[tuple[int, int], ...]:
    """Knative's max.TimeWindow: keep only entries that can still be the max of the last `size` buckets."""
    kept = [(b, v) for b, v in window if b > bucket - size]
    while kept and kept[-1][1] <= value:
        kept.pop()
    kept.append((bucket, value))
    return tuple(kept)


def decide(spec: ScalingSpec, state: DeciderState, inputs: DeciderInputs, now: float) -> Decision:
    """The desired instance count for this tick, and the state for the next one."""
    if not inputs.reachable:
        return _unreachable(spec, state, inputs, now)
    ready = max(0, inputs.ready_instances)
    r = max(1.0, float(ready))
    stable_value = inputs.stable_value
    panic_value = inputs.panic_value
    if ready == 0 and inputs.held_requests > 0:
        # The activator reports the requests it holds right away; they enter both windows.
        stable_value = max(stable_value, float(inputs.held_requests))
        panic_value = max(panic_value, float(inputs.held_requests))

    target = max(spec.target_value, 1e-9)
    dspc = math.ceil(stable_value / target)
    dppc = math.ceil(panic_value / target)
    max_up = math.ceil(spec.max_scale_up_rate * r)
    max_down = math.floor(r / spec.max_scale_down_rate)
    stable_pods = int(min(max(dspc, max_down), max_up))
    panic_pods = int(min(max(dppc, max_down), max_up))
    if spec.activation_scale > 1:
        if dspc > 0 and spec.activation_scale > stable_pods:
            stable_pods = spec.activation_scale
        if dppc > 0 and spec.activation_scale > panic_pods:
            panic_pods = spec.activation_scale

    # Panic mode: extend while over the threshold, leave one stable window after it last held.
    over_threshold = dppc / r >= spec.panic_threshold
    panic_time = state.panic_time
    max_panic = state.max_panic_pods
    if over_threshold:
        panic_time = now
    elif panic_time is not None and panic_time + spec.stable_window < now:
        panic_time = None
        max_panic = 0

    desired = stable_pods
    reason = "stable"
    if panic_time is not None:
        desired = max(desired, panic_pods)  # provision for the larger of the two windows
        if desired > max_panic:
            max_panic = desired
        elif desired < max_panic:
            reason = "panic: no scale-down"
        desired = max_panic
        if reason == "stable":
            reason = "panic"

    delay_window = state.delay_window
    if spec.scale_down_delay > 0:
        bucket = math.floor(now / spec.tick_interval)
        size = math.ceil(spec.scale_down_delay / spec.tick_interval)
        delay_window = _record_delay(delay_window, bucket, desired, size)
        delayed = delay_window[0][1]
        if delayed != desired:
            reason = f"scale-down-delay holds {delayed} (wants {desired})"
            desired = delayed
    else:
        delay_window = ()

    # Excess burst capacity, on the panic value: negative means the activator should stay in the path.
    if spec.target_burst_capacity == 0:
        ebc = 0
    elif spec.target_burst_capacity > 0:
        ebc = math.floor(ready * spec.total_value - spec.target_burst_capacity - panic_value)
    else:
        ebc = -1

    # The KPA scaler's part: when may the last instance go.
    active_since = state.active_since
    if ready == 0:
        active_since = None
    elif active_since is None:
        active_since = now
    zero_since = (
        (state.zero_wanted_since if state.zero_wanted_since is not None else now) if desired == 0 else None
    )
    if desired == 0 and not spec.enable_scale_to_zero:
        desired = 1
        reason = "scale to zero disabled"
    elif desired == 0 and ready > 0:
        hold = _zero_hold(spec, state, inputs, active_since, zero_since, now)
        if hold:
            desired = 1
            reason = hold

    min_scale = spec.min_scale
    if not state.initialized and spec.initial_scale > min_scale:
        min_scale = spec.initial_scale
        if desired < min_scale:
            reason = f"initial-scale {spec.initial_scale} not reached yet"
    if desired < min_scale:
        if reason == "stable":
            reason = f"min-scale {min_scale}"
        desired = min_scale
    if spec.max_scale != 0 and desired > spec.max_scale:
        reason = f"max-scale {spec.max_scale} (wants {desired})"
        desired = spec.max_scale

    new_state = replace(
        state,
        panic_time=panic_time,
        max_panic_pods=max_panic,
        delay_window=delay_window,
        zero_wanted_since=zero_since,
        active_since=active_since,
        initialized=state.initialized or ready >= spec.initial_scale,
    )
    return Decision(
        desired=desired,
        panicking=panic_time is not None,
        stable_value=stable_value,
        panic_value=panic_value,
        stable_desired=stable_pods,
        panic_desired=panic_pods,
        excess_burst_capacity=ebc,
        ready_instances=ready,
        target_value=spec.target_value,
        reason=reason,
        state=new_state,
    )


def _zero_hold(
    spec: ScalingSpec,
    state: DeciderState,
    inputs: DeciderInputs,
    active_since: float | None,
    zero_since: float | None,
    now: float,
) -> str:
    """Why the last instance must stay ('' when it may go)."""
    if active_since is not None and now - active_since < spec.stable_window:
        return "active for less than a stable window"
    last = inputs.last_active_at if inputs.last_active_at is not None else state.created_at
    if now - last < spec.scale_to_zero_grace_period:
        left = spec.scale_to_zero_grace_period - (now - last)
        return f"scale-to-zero grace period ({left:.1f}s left)"
    if zero_since is not None and now - zero_since < spec.scale_to_zero_pod_retention_period:
        left = spec.scale_to_zero_pod_retention_period - (now - zero_since)
        return f"scale-to-zero pod retention ({left:.1f}s left)"
    return ""


def _unreachable(spec: ScalingSpec, state: DeciderState, inputs: DeciderInputs, now: float) -> Decision:
    """No Route targets the revision, so no request can reach it any more: it goes to zero as soon as the
    requests still in it (running or waiting) are done, whatever min-scale, initial scale, panic mode or the
    scale-down delay would hold. Until then it keeps what it has (at least one instance for a held request);
    the instances it drops drain as on any scale-down. Knative lifts min-scale and the scale-down rate bound
    here too, but still follows the stable window and waits out the scale-to-zero grace period, which it needs
    to put its activator in the path; wisp's throttler is always in the path, and the window's history
    predicts no traffic that no Route can send."""
    ready = max(0, inputs.ready_instances)
    busy = max(0, inputs.in_flight, inputs.held_requests)
    desired = max(1, ready) if busy else 0
    reason = f"unreachable: {busy} request{'s' if busy != 1 else ''} still in it" if busy else "unreachable"
    if desired == 0 and not spec.enable_scale_to_zero:
        desired, reason = 1, "unreachable, scale to zero disabled"
    if spec.max_scale != 0 and desired > spec.max_scale:
        desired = spec.max_scale
    active_since = None if ready == 0 else (state.active_since if state.active_since is not None else now)
    zero_since = (state.zero_wanted_since if state.zero_wanted_since is not None else now) if desired == 0 else None
    new_state = replace(state, panic_time=None, max_panic_pods=0, delay_window=(), zero_wanted_since=zero_since,
                        active_since=active_since)
    return Decision(
        desired=desired, panicking=False, stable_value=inputs.stable_value, panic_value=inputs.panic_value,
        stable_desired=desired, panic_desired=desired, excess_burst_capacity=0, ready_instances=ready,
        target_value=spec.target_value, reason=reason, state=new_state,
    )
