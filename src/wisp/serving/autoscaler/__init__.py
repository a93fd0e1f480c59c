"""Knative's KPA as separate, pure parts: config, annotations, request collector, windows, decider."""

from wisp.serving.autoscaler.annotations import resolve_scaling, validate_annotations
from wisp.serving.autoscaler.autoscaler import RevisionAutoscaler
from wisp.serving.autoscaler.config import (
    AutoscalerConfig,
    DefaultsConfig,
    parse_config_autoscaler,
    parse_config_defaults,
)
from wisp.serving.autoscaler.decider import DeciderInputs, DeciderState, Decision, decide
from wisp.serving.autoscaler.metrics import RequestCollector
from wisp.serving.autoscaler.spec import ScalingSpec
from wisp.serving.autoscaler.window import TimedBuckets

__all__ = [
    "AutoscalerConfig",
    "DeciderInputs",
    "DeciderState",
    "Decision",
    "DefaultsConfig",
    "RequestCollector",
    "RevisionAutoscaler",
    "ScalingSpec",
    "TimedBuckets",
    "decide",
    "parse_config_autoscaler",
    "parse_config_defaults",
    "resolve_scaling",
    "validate_annotations",
]
