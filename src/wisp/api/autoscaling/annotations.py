"""The `autoscaling.knative.dev/*` annotations: Knative's validation, and the effective spec they yield.

Each annotation has a canonical kebab-case key and, for most, a legacy camelCase spelling; the canonical
one wins when looking up a value (Knative's kmap.KeyPriority). Error paths are relative,
`[autoscaling.knative.dev/max-scale]`, naming the key the user actually wrote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from wisp.api.autoscaling.config import (
    HPA_CLASS,
    INT32_MAX,
    KPA_CLASS,
    PANIC_THRESHOLD_PERCENTAGE_MAX,
    PANIC_THRESHOLD_PERCENTAGE_MIN,
    PANIC_WINDOW_PERCENTAGE_MAX,
    PANIC_WINDOW_PERCENTAGE_MIN,
    SCALE_LIMIT_HINT,
    TARGET_MIN,
    WINDOW_MAX,
    WINDOW_MIN,
    AutoscalerConfig,
    bounds_message,
    fmt_number,
    format_go_duration,
    parse_go_duration,
    parse_go_float,
    parse_go_int,
)
from wisp.api.autoscaling.spec import CONCURRENCY, RPS, ScalingSpec
from wisp.api.errors import FieldError, ManifestError

GROUP = "autoscaling.knative.dev"
KNATIVE_DOMAIN = ".knative.dev"


def _keys(*names: str) -> tuple[str, ...]:
    return tuple(f"{GROUP}/{n}" for n in names)


CLASS = _keys("class")
METRIC = _keys("metric")
TARGET = _keys("target")
WINDOW = _keys("window")
MIN_SCALE = _keys("min-scale", "minScale")
MAX_SCALE = _keys("max-scale", "maxScale")
INITIAL_SCALE = _keys("initial-scale", "initialScale")
ACTIVATION_SCALE = _keys("activation-scale", "activationScale")
TARGET_UTILIZATION = _keys("target-utilization-percentage", "targetUtilizationPercentage")
TARGET_BURST_CAPACITY = _keys("target-burst-capacity", "targetBurstCapacity")
PANIC_WINDOW_PERCENTAGE = _keys("panic-window-percentage", "panicWindowPercentage")
PANIC_THRESHOLD_PERCENTAGE = _keys("panic-threshold-percentage", "panicThresholdPercentage")
SCALE_DOWN_DELAY = _keys("scale-down-delay", "scaleDownDelay")
RETENTION = _keys("scale-to-zero-pod-retention-period", "scaleToZeroPodRetentionPeriod")
AGGREGATION_ALGORITHM = _keys("metric-aggregation-algorithm", "metricAggregationAlgorithm")

ALL_KEYS: tuple[tuple[str, ...], ...] = (
    CLASS, METRIC, TARGET, WINDOW, MIN_SCALE, MAX_SCALE, INITIAL_SCALE, ACTIVATION_SCALE,
    TARGET_UTILIZATION, TARGET_BURST_CAPACITY, PANIC_WINDOW_PERCENTAGE, PANIC_THRESHOLD_PERCENTAGE,
    SCALE_DOWN_DELAY, RETENTION, AGGREGATION_ALGORITHM,
)  # fmt: skip
_KNOWN = frozenset(k for keys in ALL_KEYS for k in keys)
_AGGREGATION_ALGORITHMS = ("linear", "weightedExponential", "weighted-exponential")


def lookup(annotations: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, value) of the first spelling present, canonical first; None when absent."""
    for key in keys:
        if key in annotations:
            return key, annotations[key]
    return None


def _path(key: str) -> str:
    return f"[{key}]"


def _invalid(key: str, value: str) -> FieldError:
    return FieldError(_path(key), f"invalid value: {value}")


def _int_ge0(annotations: Mapping[str, str], keys: tuple[str, ...], errs: list[FieldError]) -> int:
    found = lookup(annotations, keys)
    if found is None:
        return 0
    key, raw = found
    try:
        value = parse_go_int(raw)
    except OverflowError:
        errs.append(FieldError(_path(key), bounds_message(raw, 0, INT32_MAX)))
        return 0
    except ValueError:
        errs.append(_invalid(key, raw))
        return 0
    if value < 0:
        errs.append(FieldError(_path(key), bounds_message(raw, 0, INT32_MAX)))
        return 0
    return value


def _float(
    annotations: Mapping[str, str], keys: tuple[str, ...], lo: float, hi: float, errs: list[FieldError]
) -> None:
    found = lookup(annotations, keys)
    if found is None:
        return
    key, raw = found
    try:
        value = parse_go_float(raw)
    except ValueError:
        errs.append(_invalid(key, raw))
        return
    if not lo <= value <= hi:
        errs.append(FieldError(_path(key), bounds_message(raw, fmt_number(lo), fmt_number(hi))))


def _duration(
    annotations: Mapping[str, str],
    keys: tuple[str, ...],
    lo: float,
    errs: list[FieldError],
    whole_seconds: bool,
) -> None:
    found = lookup(annotations, keys)
    if found is None:
        return
    key, raw = found
    try:
        value = parse_go_duration(raw)
    except ValueError:
        errs.append(_invalid(key, raw))
        return
    if not lo <= value <= WINDOW_MAX:
        errs.append(
            FieldError(
                _path(key), bounds_message(raw, format_go_duration(lo), format_go_duration(WINDOW_MAX))
            )
        )
    elif whole_seconds and value != math.floor(value):
        errs.append(FieldError(_path(key), "must be specified with at most second precision"))


def validate_annotations(
    annotations: Mapping[str, str], *, config: AutoscalerConfig | None = None
) -> list[FieldError]:
    """Every problem with the `autoscaling.knative.dev/*` annotations, Knative's rules and bounds.

    `config` supplies allow-zero-initial-scale and max-scale-limit (Knative's defaults when omitted).
    """
    cfg = config or AutoscalerConfig()
    errs: list[FieldError] = []

    for key in sorted(annotations):
        if key.startswith(f"{GROUP}/") and key not in _KNOWN:
            errs.append(FieldError(_path(key), f'invalid key name "{key}"'))
    for keys in ALL_KEYS:
        present = [k for k in keys if k in annotations]
        if len(present) > 1:
            errs.append(FieldError(", ".join(_path(k) for k in present), "expected exactly one, got both"))

    found_class = lookup(annotations, CLASS)
    autoscaler_class = found_class[1] if found_class else KPA_CLASS
    if (
        found_class
        and autoscaler_class.endswith(KNATIVE_DOMAIN)
        and autoscaler_class not in (KPA_CLASS, HPA_CLASS)
    ):
        errs.append(_invalid(found_class[0], autoscaler_class))

    min_scale = _int_ge0(annotations, MIN_SCALE, errs)
    max_scale = _int_ge0(annotations, MAX_SCALE, errs)
    found_max = lookup(annotations, MAX_SCALE)
    if max_scale != 0 and max_scale < min_scale and found_max:
        errs.append(FieldError(_path(found_max[0]), "must be >= min-scale"))
    limit = cfg.max_scale_limit
    found_min = lookup(annotations, MIN_SCALE)
    if found_min and limit > 0 and min_scale > limit:
        # Knative lets max-scale cap such a min-scale later; refusing it names the mistake where it is made.
        errs.append(FieldError(_path(found_min[0]), bounds_message(str(min_scale), 0, limit) + SCALE_LIMIT_HINT))
    if found_max and limit > 0:
        if max_scale > limit:
            errs.append(FieldError(_path(found_max[0]), bounds_message(str(max_scale), 1, limit) + SCALE_LIMIT_HINT))
        if max_scale == 0 and found_max[1].strip() == "0":
            errs.append(
                FieldError(
                    _path(found_max[0]), f"max-scale=0 (unlimited), must be less than {cfg.max_scale_limit}"
                )
            )

    _float(
        annotations, PANIC_WINDOW_PERCENTAGE, PANIC_WINDOW_PERCENTAGE_MIN, PANIC_WINDOW_PERCENTAGE_MAX, errs
    )
    _float(
        annotations,
        PANIC_THRESHOLD_PERCENTAGE,
        PANIC_THRESHOLD_PERCENTAGE_MIN,
        PANIC_THRESHOLD_PERCENTAGE_MAX,
        errs,
    )
    _float(annotations, TARGET_UTILIZATION, 1.0, 100.0, errs)

    found = lookup(annotations, TARGET)
    if found:
        key, raw = found
        try:
            ok = parse_go_float(raw) >= TARGET_MIN
        except ValueError:
            ok = False
        if not ok:
            errs.append(FieldError(_path(key), f"target {raw} should be at least {TARGET_MIN}"))

    found = lookup(annotations, TARGET_BURST_CAPACITY)
    if found:
        key, raw = found
        try:
            tbc = parse_go_float(raw)
            ok = tbc >= 0 or tbc == -1
        except ValueError:
            ok = False
        if not ok:
            errs.append(_invalid(key, raw))

    _duration(annotations, WINDOW, WINDOW_MIN, errs, whole_seconds=True)
    _duration(annotations, RETENTION, 0.0, errs, whole_seconds=False)
    _duration(annotations, SCALE_DOWN_DELAY, 0.0, errs, whole_seconds=True)

    found = lookup(annotations, METRIC)
    if found:
        key, metric = found
        if (autoscaler_class == KPA_CLASS and metric not in (CONCURRENCY, RPS)) or (
            autoscaler_class == HPA_CLASS and metric == ""
        ):
            errs.append(_invalid(key, metric))

    found = lookup(annotations, AGGREGATION_ALGORITHM)
    if found and found_class and autoscaler_class == KPA_CLASS and found[1] not in _AGGREGATION_ALGORITHMS:
        errs.append(_invalid(found[0], found[1]))

    found = lookup(annotations, INITIAL_SCALE)
    if found:
        key, raw = found
        try:
            initial = parse_go_int(raw, 64)
        except (ValueError, OverflowError):
            initial = -1
        if initial < 0 or (initial == 0 and not cfg.allow_zero_initial_scale):
            errs.append(_invalid(key, raw))
        elif limit > 0 and initial > limit:
            errs.append(FieldError(_path(key), bounds_message(str(initial), 0, limit) + SCALE_LIMIT_HINT))

    found = lookup(annotations, ACTIVATION_SCALE)
    if found:
        key, raw = found
        try:
            activation = parse_go_int(raw)
        except ValueError:
            errs.append(_invalid(key, raw))
        except OverflowError:
            errs.append(FieldError(_path(key), bounds_message(raw, 1, INT32_MAX)))
        else:
            if activation < 1:
                errs.append(FieldError(_path(key), bounds_message(raw, 1, INT32_MAX)))
            elif max_scale > 0 and activation > max_scale:
                errs.append(FieldError(_path(key), "must be <= max-scale"))
    return errs


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    annotations: Mapping[str, str]

    def get(self, keys: tuple[str, ...]) -> str | None:
        found = lookup(self.annotations, keys)
        return found[1] if found else None

    def float_(self, keys: tuple[str, ...], default: float) -> float:
        raw = self.get(keys)
        return default if raw is None else parse_go_float(raw)

    def int_(self, keys: tuple[str, ...], default: int) -> int:
        raw = self.get(keys)
        return default if raw is None else parse_go_int(raw, 64)

    def duration(self, keys: tuple[str, ...], default: float) -> float:
        raw = self.get(keys)
        return default if raw is None else parse_go_duration(raw)


def resolve_scaling(
    annotations: Mapping[str, str], container_concurrency: int, config: AutoscalerConfig
) -> ScalingSpec:
    """The effective autoscaling parameters of one revision: annotations over `config-autoscaler`.

    Raises ManifestError (relative paths) when the annotations do not validate. A class other than
    KPA yields a spec with `unsupported_reason` set; the caller reports it and does not autoscale.
    """
    errors = validate_annotations(annotations, config=config)
    if errors:
        raise ManifestError(errors)
    raw = _Raw(annotations)

    autoscaler_class = raw.get(CLASS) or config.pod_autoscaler_class
    unsupported = None
    if autoscaler_class != KPA_CLASS:
        unsupported = (
            f"autoscaler class {autoscaler_class!r} is not supported by wisp; "
            f"only {KPA_CLASS!r} (request-driven, scale to zero) is"
        )
    metric = raw.get(METRIC) or CONCURRENCY
    if metric not in (CONCURRENCY, RPS):
        unsupported = unsupported or f"metric {metric!r} is not supported by the KPA"
        metric = CONCURRENCY

    # Knative's ResolveMetricTarget.
    utilization = config.target_utilization
    if metric == RPS:
        total = config.requests_per_second_target_default
    else:
        total = float(container_concurrency) or config.container_concurrency_target_default
    target_annotation = raw.get(TARGET)
    if target_annotation is not None:
        total = parse_go_float(target_annotation)
        if container_concurrency > 0 and metric == CONCURRENCY:
            total = min(total, float(container_concurrency))  # the hard limit caps the soft target
    tu_annotation = raw.get(TARGET_UTILIZATION)
    if tu_annotation is not None:
        utilization = parse_go_float(tu_annotation) / 100.0
    target = max(TARGET_MIN, total * utilization)

    stable_window = raw.duration(WINDOW, config.stable_window)
    panic_pct = raw.float_(PANIC_WINDOW_PERCENTAGE, config.panic_window_percentage)
    # Knative rounds the panic window to the 1 s bucket size, and never below one bucket.
    panic_window = max(1.0, math.floor(stable_window * panic_pct / 100.0 + 0.5))

    min_scale = raw.int_(MIN_SCALE, config.min_scale)
    max_scale = raw.int_(MAX_SCALE, config.max_scale)
    activation = raw.int_(ACTIVATION_SCALE, config.activation_scale)
    if max_scale > 0:
        activation = min(activation, max_scale)

    return ScalingSpec(
        metric=metric,
        target_value=target,
        total_value=total,
        target_utilization=utilization,
        container_concurrency=container_concurrency,
        stable_window=stable_window,
        panic_window=panic_window,
        panic_threshold=raw.float_(PANIC_THRESHOLD_PERCENTAGE, config.panic_threshold_percentage) / 100.0,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        target_burst_capacity=raw.float_(TARGET_BURST_CAPACITY, config.target_burst_capacity),
        min_scale=min_scale,
        max_scale=max_scale,
        initial_scale=raw.int_(INITIAL_SCALE, config.initial_scale),
        activation_scale=activation,
        scale_down_delay=raw.duration(SCALE_DOWN_DELAY, config.scale_down_delay),
        scale_to_zero_grace_period=config.scale_to_zero_grace_period,
        scale_to_zero_pod_retention_period=raw.duration(RETENTION, config.scale_to_zero_pod_retention_period),
        enable_scale_to_zero=config.enable_scale_to_zero,
        tick_interval=config.tick_interval,
        autoscaler_class=autoscaler_class,
        unsupported_reason=unsupported,
    )
