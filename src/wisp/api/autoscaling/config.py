"""Knative's `config-autoscaler` and `config-defaults` ConfigMaps: keys, defaults and bounds.

Values are parsed the way Knative's configmap helpers parse them (Go durations, Go floats, base-10
int32s, Go booleans) and validated with Knative's bounds; a bad value raises `ManifestError` naming
`data[<key>]`. Durations are kept as float seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from wisp.api.errors import FieldError, ManifestError

KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"

TARGET_MIN = 0.01
WINDOW_MIN = 6.0
WINDOW_MAX = 3600.0
PANIC_WINDOW_PERCENTAGE_MIN = 1.0
PANIC_WINDOW_PERCENTAGE_MAX = 100.0
PANIC_THRESHOLD_PERCENTAGE_MIN = 110.0
PANIC_THRESHOLD_PERCENTAGE_MAX = 1000.0
INT32_MAX = 2**31 - 1

# ---------------------------------------------------------------------------------------------------------
# Go-compatible scalar parsing: Knative reads these strings with Go's strconv and time packages.

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")  # ASCII digits, as Go
_INT = re.compile(r"[+-]?[0-9]+")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (`60s`, `1m30s`, `1.5h`, `500ms`, `0`); ValueError otherwise."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()` for whole seconds: `6s`, `1m0s`, `1h0m0s`, `0s`."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    total = int(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def parse_go_float(text: str) -> float:
    """strconv.ParseFloat without NaN (a NaN would slip past every bound check)."""
    if text.strip() != text or "_" in text:
        raise ValueError(f"invalid float {text!r}")
    value = float(text)
    if math.isnan(value):
        raise ValueError(f"invalid float {text!r}")
    return value


def parse_go_int(text: str, bits: int = 32) -> int:
    """strconv.ParseInt(text, 10, bits); OverflowError when out of range, ValueError when malformed."""
    if not _INT.fullmatch(text):
        raise ValueError(f"invalid integer {text!r}")
    value = int(text)
    limit = 2 ** (bits - 1)
    if not -limit <= value < limit:
        raise OverflowError(f"integer {text!r} out of range")
    return value


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


SCALE_LIMIT_HINT = " (max-scale-limit of config-autoscaler in knative-serving)"


def bounds_message(value: str, lower: object, upper: object) -> str:
    """Knative's ErrOutOfBoundsValue wording."""
    return f"expected {lower} <= {value} <= {upper}"


def fmt_number(value: float) -> str:
    """Go's %v for a float64 (`100`, `0.7`)."""
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------------------


# wisp runs every instance on one machine, so its embedded config-autoscaler bounds scale as Knative's
# `max-scale-limit` does on a cluster whose operator set it: min-, max- and initial-scale above it are refused
# at apply with a clear error (a runtime, machine-sized cap on instances comes on top). 100 is the value of
# Knative's own docs example of max-scale-limit, and the largest scale any of Knative's docs' manifests asks
# for. Knative requires max-scale in [1, max-scale-limit] when a limit is set, so max-scale (the bound of a
# revision without the annotation) takes the same value. An operator's config-autoscaler may change both;
# `max-scale-limit: "0"` with `max-scale: "0"` restores Knative's unbounded defaults.
ONE_MACHINE_SCALE_LIMIT = 100


@dataclass(frozen=True)
class AutoscalerConfig:
    """`config-autoscaler` with Knative's defaults but two (see `ONE_MACHINE_SCALE_LIMIT`). Durations in seconds;
    utilization as a fraction."""

    container_concurrency_target_percentage: float = 70.0
    container_concurrency_target_default: float = 100.0
    requests_per_second_target_default: float = 200.0
    target_burst_capacity: float = 211.0
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_period: float = 30.0
    scale_to_zero_pod_retention_period: float = 0.0
    enable_scale_to_zero: bool = True
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    min_scale: int = 0
    max_scale: int = ONE_MACHINE_SCALE_LIMIT  # Knative: 0 (unbounded)
    max_scale_limit: int = ONE_MACHINE_SCALE_LIMIT  # Knative: 0 (no limit)
    activation_scale: int = 1
    scale_down_delay: float = 0.0
    activator_capacity: float = 100.0
    pod_autoscaler_class: str = KPA_CLASS
    tick_interval: float = 2.0

    @property
    def target_utilization(self) -> float:
        """container-concurrency-target-percentage as a fraction (a legacy (0, 1] fraction is kept as is)."""
        pct = self.container_concurrency_target_percentage
        return pct / 100.0 if pct > 1.0 else pct


_Parser = Callable[[str], Any]

# ConfigMap key → (dataclass field, parser).
_AUTOSCALER_KEYS: dict[str, tuple[str, _Parser]] = {
    "container-concurrency-target-percentage": ("container_concurrency_target_percentage", parse_go_float),
    "container-concurrency-target-default": ("container_concurrency_target_default", parse_go_float),
    "requests-per-second-target-default": ("requests_per_second_target_default", parse_go_float),
    "target-burst-capacity": ("target_burst_capacity", parse_go_float),
    "stable-window": ("stable_window", parse_go_duration),
    "panic-window-percentage": ("panic_window_percentage", parse_go_float),
    "panic-threshold-percentage": ("panic_threshold_percentage", parse_go_float),
    "max-scale-up-rate": ("max_scale_up_rate", parse_go_float),
    "max-scale-down-rate": ("max_scale_down_rate", parse_go_float),
    "scale-to-zero-grace-period": ("scale_to_zero_grace_period", parse_go_duration),
    "scale-to-zero-pod-retention-period": ("scale_to_zero_pod_retention_period", parse_go_duration),
    "enable-scale-to-zero": ("enable_scale_to_zero", parse_go_bool),
    "initial-scale": ("initial_scale", parse_go_int),
    "allow-zero-initial-scale": ("allow_zero_initial_scale", parse_go_bool),
    "min-scale": ("min_scale", parse_go_int),
    "max-scale": ("max_scale", parse_go_int),
    "max-scale-limit": ("max_scale_limit", parse_go_int),
    "activation-scale": ("activation_scale", parse_go_int),
    "scale-down-delay": ("scale_down_delay", parse_go_duration),
    "activator-capacity": ("activator_capacity", parse_go_float),
    "pod-autoscaler-class": ("pod_autoscaler_class", str),
    "tick-interval": ("tick_interval", parse_go_duration),
}


def _parse_keys(
    data: Mapping[str, str], keys: Mapping[str, tuple[str, _Parser]]
) -> tuple[dict[str, Any], list[FieldError]]:
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, (attr, parser) in keys.items():
        if key not in data:
            continue
        raw = data[key]
        try:
            values[attr] = parser(str(raw))
        except (ValueError, OverflowError):
            errors.append(FieldError(f"data[{key}]", f"invalid value: {raw}"))
    return values, errors


def parse_config_autoscaler(data: Mapping[str, str]) -> AutoscalerConfig:
    """An `AutoscalerConfig` from a `config-autoscaler` data map; unknown keys are ignored as Knative does."""
    values, errors = _parse_keys(data, _AUTOSCALER_KEYS)
    if errors:
        raise ManifestError(errors)
    cfg = replace(AutoscalerConfig(), **values)
    errors = _validate_autoscaler(cfg)
    if errors:
        raise ManifestError(errors)
    return cfg


def _validate_autoscaler(c: AutoscalerConfig) -> list[FieldError]:
    errs: list[FieldError] = []

    def bad(key: str, message: str) -> None:
        errs.append(FieldError(f"data[{key}]", message))

    if c.scale_to_zero_grace_period <= 0:
        bad(
            "scale-to-zero-grace-period",
            f"must be positive, was: {format_go_duration(c.scale_to_zero_grace_period)}",
        )
    if c.scale_down_delay < 0:
        bad("scale-down-delay", "cannot be negative")
    elif c.scale_down_delay > WINDOW_MAX:
        bad("scale-down-delay", bounds_message(format_go_duration(c.scale_down_delay), "0s", "1h0m0s"))
    elif c.scale_down_delay != round(c.scale_down_delay):
        bad("scale-down-delay", "must be specified with at most second precision")
    if c.scale_to_zero_pod_retention_period < 0:
        bad("scale-to-zero-pod-retention-period", "cannot be negative")
    if c.target_burst_capacity < 0 and c.target_burst_capacity != -1:
        bad("target-burst-capacity", "must be either non-negative or -1 (for unlimited)")
    pct = c.container_concurrency_target_percentage
    if pct <= 0 or pct > 100:
        bad(
            "container-concurrency-target-percentage",
            f"{fmt_number(pct)} is outside of valid range of (0, 100]",
        )
    elif (target := c.target_utilization * c.container_concurrency_target_default) < TARGET_MIN:
        bad(
            "container-concurrency-target-default",
            f"container-concurrency-target-percentage and container-concurrency-target-default yield "
            f"target concurrency of {fmt_number(target)}"
            f", can't be less than {TARGET_MIN}",
        )
    if c.requests_per_second_target_default < TARGET_MIN:
        bad("requests-per-second-target-default", f"must be at least {TARGET_MIN}")
    if c.activator_capacity < 1:
        bad("activator-capacity", "must be at least 1")
    if c.max_scale_up_rate <= 1.0:
        bad("max-scale-up-rate", "must be greater than 1.0")
    if c.max_scale_down_rate <= 1.0:
        bad("max-scale-down-rate", "must be greater than 1.0")
    if not WINDOW_MIN <= c.stable_window <= WINDOW_MAX:
        bad("stable-window", bounds_message(format_go_duration(c.stable_window), "6s", "1h0m0s"))
    elif c.stable_window != round(c.stable_window):
        bad("stable-window", "must be specified with at most second precision")
    if not PANIC_WINDOW_PERCENTAGE_MIN <= c.panic_window_percentage <= PANIC_WINDOW_PERCENTAGE_MAX:
        bad("panic-window-percentage", bounds_message(fmt_number(c.panic_window_percentage), "1", "100"))
    if not PANIC_THRESHOLD_PERCENTAGE_MIN <= c.panic_threshold_percentage <= PANIC_THRESHOLD_PERCENTAGE_MAX:
        bad(
            "panic-threshold-percentage",
            bounds_message(fmt_number(c.panic_threshold_percentage), "110", "1000"),
        )
    if c.initial_scale < 0 or (c.initial_scale == 0 and not c.allow_zero_initial_scale):
        bad("initial-scale", "must be at least 0 (or at least 1 when allow-zero-initial-scale is false)")
    if c.max_scale_limit < 0:
        bad("max-scale-limit", "must be at least 0")
    min_max = 1 if c.max_scale_limit > 0 else 0
    if c.max_scale < min_max or (c.max_scale_limit > 0 and c.max_scale > c.max_scale_limit):
        bad("max-scale", f"must be in [{min_max}, max-scale-limit({c.max_scale_limit})] range")
    if c.max_scale_limit > 0 and c.initial_scale > c.max_scale_limit:
        bad("initial-scale", bounds_message(str(c.initial_scale), 0, c.max_scale_limit) + SCALE_LIMIT_HINT)
    if c.min_scale < 0:
        bad("min-scale", bounds_message(str(c.min_scale), 0, INT32_MAX))
    elif c.max_scale > 0 and c.min_scale > c.max_scale:
        bad("min-scale", "must be <= max-scale")
    if c.activation_scale < 1:
        bad("activation-scale", bounds_message(str(c.activation_scale), 1, INT32_MAX))
    if c.tick_interval <= 0:
        bad("tick-interval", "must be positive")
    return errs


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultsConfig:
    """`config-defaults` with Knative's defaults. Timeouts in seconds; resource requests as raw quantities."""

    revision_timeout_seconds: int = 300
    max_revision_timeout_seconds: int = 600
    revision_response_start_timeout_seconds: int = 0  # 0 = same as revision-timeout-seconds
    revision_idle_timeout_seconds: int = 0  # 0 = unlimited
    container_concurrency: int = 0
    container_concurrency_max_limit: int = 1000
    allow_container_concurrency_zero: bool = True
    enable_service_links: bool | None = False
    container_name_template: str = "user-container"
    init_container_name_template: str = "init-container"
    revision_cpu_request: str | None = None
    revision_memory_request: str | None = None
    revision_ephemeral_storage_request: str | None = None
    revision_cpu_limit: str | None = None
    revision_memory_limit: str | None = None
    revision_ephemeral_storage_limit: str | None = None


def _parse_int64(text: str) -> int:
    return parse_go_int(text, 64)


def _parse_optional_bool(text: str) -> bool | None:
    return None if text == "default" else parse_go_bool(text)


_DEFAULTS_KEYS: dict[str, tuple[str, _Parser]] = {
    "revision-timeout-seconds": ("revision_timeout_seconds", _parse_int64),
    "max-revision-timeout-seconds": ("max_revision_timeout_seconds", _parse_int64),
    "revision-response-start-timeout-seconds": ("revision_response_start_timeout_seconds", _parse_int64),
    "revision-idle-timeout-seconds": ("revision_idle_timeout_seconds", _parse_int64),
    "container-concurrency": ("container_concurrency", _parse_int64),
    "container-concurrency-max-limit": ("container_concurrency_max_limit", _parse_int64),
    "allow-container-concurrency-zero": ("allow_container_concurrency_zero", parse_go_bool),
    "enable-service-links": ("enable_service_links", _parse_optional_bool),
    "container-name-template": ("container_name_template", str),
    "init-container-name-template": ("init_container_name_template", str),
    "revision-cpu-request": ("revision_cpu_request", str),
    "revision-memory-request": ("revision_memory_request", str),
    "revision-ephemeral-storage-request": ("revision_ephemeral_storage_request", str),
    "revision-cpu-limit": ("revision_cpu_limit", str),
    "revision-memory-limit": ("revision_memory_limit", str),
    "revision-ephemeral-storage-limit": ("revision_ephemeral_storage_limit", str),
}


def parse_config_defaults(data: Mapping[str, str]) -> DefaultsConfig:
    """A `DefaultsConfig` from a `config-defaults` data map, validated with Knative's rules."""
    values, errors = _parse_keys(data, _DEFAULTS_KEYS)
    if errors:
        raise ManifestError(errors)
    cfg = replace(DefaultsConfig(), **values)
    errs: list[FieldError] = []

    def bad(key: str, message: str) -> None:
        errs.append(FieldError(f"data[{key}]", message))

    if cfg.container_concurrency_max_limit < 1:
        bad(
            "container-concurrency-max-limit",
            bounds_message(str(cfg.container_concurrency_max_limit), 1, INT32_MAX),
        )
    elif not 0 <= cfg.container_concurrency <= cfg.container_concurrency_max_limit:
        bad(
            "container-concurrency",
            bounds_message(str(cfg.container_concurrency), 0, cfg.container_concurrency_max_limit),
        )
    if cfg.container_concurrency == 0 and not cfg.allow_container_concurrency_zero:
        bad("container-concurrency", "must be at least 1 when allow-container-concurrency-zero is false")
    if cfg.revision_timeout_seconds < 0:
        bad("revision-timeout-seconds", "cannot be negative")
    if cfg.max_revision_timeout_seconds < 0:
        bad("max-revision-timeout-seconds", "cannot be negative")
    if cfg.revision_timeout_seconds > cfg.max_revision_timeout_seconds:
        bad(
            "revision-timeout-seconds",
            f"revision-timeout-seconds ({cfg.revision_timeout_seconds}) cannot be greater than "
            f"max-revision-timeout-seconds ({cfg.max_revision_timeout_seconds})",
        )
    if cfg.revision_response_start_timeout_seconds < 0:
        bad("revision-response-start-timeout-seconds", "cannot be negative")
    elif cfg.revision_response_start_timeout_seconds > cfg.revision_timeout_seconds:
        bad(
            "revision-response-start-timeout-seconds",
            f"revision-response-start-timeout-seconds ({cfg.revision_response_start_timeout_seconds}) "
            "cannot be "
            f"greater than revision-timeout-seconds ({cfg.revision_timeout_seconds})",
        )
    if cfg.revision_idle_timeout_seconds < 0:
        bad("revision-idle-timeout-seconds", "cannot be negative")
    elif cfg.revision_idle_timeout_seconds > cfg.revision_timeout_seconds:
        bad(
            "revision-idle-timeout-seconds",
            f"revision-idle-timeout-seconds ({cfg.revision_idle_timeout_seconds}) cannot be greater than "
            f"revision-timeout-seconds ({cfg.revision_timeout_seconds})",
        )
    if "{{" in cfg.container_name_template and "}}" not in cfg.container_name_template:
        bad("container-name-template", "invalid template")
    if errs:
        raise ManifestError(errs)
    return cfg


def config_keys() -> list[str]:
    """Every `config-autoscaler` key wisp reads, for docs and the CLI."""
    return list(_AUTOSCALER_KEYS)
