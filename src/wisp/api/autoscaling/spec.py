"""The effective per-revision autoscaling parameters (Knative's DeciderSpec plus the scaler's bounds)."""

from __future__ import annotations

from dataclasses import dataclass

from wisp.api.autoscaling.config import KPA_CLASS

CONCURRENCY = "concurrency"
RPS = "rps"


@dataclass(frozen=True)
class ScalingSpec:
    """What one revision scales on. Durations in seconds; thresholds and utilization as fractions.

    `target_value` is T (per-instance target after utilization), `total_value` the per-instance total
    before it (containerConcurrency, the `target` annotation or the default).
    """

    metric: str = CONCURRENCY
    target_value: float = 70.0
    total_value: float = 100.0
    target_utilization: float = 0.7
    container_concurrency: int = 0
    stable_window: float = 60.0
    panic_window: float = 6.0
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    target_burst_capacity: float = 211.0
    min_scale: int = 0
    max_scale: int = 0  # 0 = unbounded
    initial_scale: int = 1
    activation_scale: int = 1
    scale_down_delay: float = 0.0
    scale_to_zero_grace_period: float = 30.0
    scale_to_zero_pod_retention_period: float = 0.0
    enable_scale_to_zero: bool = True
    tick_interval: float = 2.0
    autoscaler_class: str = KPA_CLASS
    # Set when wisp cannot run this revision's autoscaler class (e.g. hpa): report it as a condition.
    unsupported_reason: str | None = None

    @property
    def supported(self) -> bool:
        return self.unsupported_reason is None
