"""Knative's KPA as separate, pure parts: request collector, windows, decider, and the per-revision autoscaler.

Its inputs (config-autoscaler, the annotations, ScalingSpec) are Knative field rules and live in
wisp.api.autoscaling.
"""

from wisp.serving.autoscaler.autoscaler import RevisionAutoscaler
from wisp.serving.autoscaler.decider import DeciderInputs, DeciderState, Decision, decide
from wisp.serving.autoscaler.metrics import RequestCollector
from wisp.serving.autoscaler.window import TimedBuckets

__all__ = [
    "DeciderInputs",
    "DeciderState",
    "Decision",
    "RequestCollector",
    "RevisionAutoscaler",
    "TimedBuckets",
    "decide",
]
