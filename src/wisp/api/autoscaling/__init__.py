"""Knative's autoscaling rules: config-autoscaler / config-defaults keys, the per-revision annotations, and the
effective ScalingSpec they yield. Pure; the KPA that acts on them lives in wisp.serving.autoscaler."""

from wisp.api.autoscaling.annotations import resolve_scaling, validate_annotations
from wisp.api.autoscaling.config import (
    AutoscalerConfig,
    DefaultsConfig,
    parse_config_autoscaler,
    parse_config_defaults,
)
from wisp.api.autoscaling.spec import ScalingSpec

__all__ = [
    "AutoscalerConfig",
    "DefaultsConfig",
    "ScalingSpec",
    "parse_config_autoscaler",
    "parse_config_defaults",
    "resolve_scaling",
    "validate_annotations",
]
