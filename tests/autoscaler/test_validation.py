"""config-autoscaler / config-defaults parsing and the autoscaling annotations' validation."""

from __future__ import annotations

import pytest

from wisp.api.autoscaling.annotations import resolve_scaling, validate_annotations
from wisp.api.autoscaling.config import (
    ONE_MACHINE_SCALE_LIMIT,
    AutoscalerConfig,
    DefaultsConfig,
    format_go_duration,
    parse_config_autoscaler,
    parse_config_defaults,
    parse_go_duration,
)
from wisp.api.errors import ManifestError

A = "autoscaling.knative.dev/"


def errors_of(annotations: dict[str, str], **kw: object) -> dict[str, str]:
    return {e.path: e.message for e in validate_annotations(annotations, **kw)}  # type: ignore[arg-type]


# -- config-autoscaler -----------------------------------------------------------------------------


def test_config_defaults_match_knative() -> None:
    """Knative's defaults, but for the scale limit a single machine needs (see ONE_MACHINE_SCALE_LIMIT)."""
    c = parse_config_autoscaler({})
    assert c == AutoscalerConfig()
    assert c.target_utilization == pytest.approx(0.7)
    assert (c.container_concurrency_target_default, c.requests_per_second_target_default) == (100, 200)
    assert (c.target_burst_capacity, c.stable_window, c.panic_window_percentage) == (211, 60, 10)
    assert (c.panic_threshold_percentage, c.max_scale_up_rate, c.max_scale_down_rate) == (200, 1000, 2)
    assert (c.scale_to_zero_grace_period, c.scale_to_zero_pod_retention_period) == (30, 0)
    assert c.enable_scale_to_zero and c.initial_scale == 1 and not c.allow_zero_initial_scale
    assert (c.min_scale, c.max_scale, c.max_scale_limit, c.activation_scale) == (0, 100, 100, 1)
    assert ONE_MACHINE_SCALE_LIMIT == 100
    knative = parse_config_autoscaler({"max-scale-limit": "0", "max-scale": "0"})
    assert (knative.max_scale, knative.max_scale_limit) == (0, 0)
    assert c.scale_down_delay == 0 and c.pod_autoscaler_class == "kpa.autoscaling.knative.dev"


def test_config_parses_values() -> None:
    c = parse_config_autoscaler(
        {
            "stable-window": "2m",
            "container-concurrency-target-percentage": "80",
            "enable-scale-to-zero": "false",
        }
    )
    assert (
        c.stable_window == 120 and c.target_utilization == pytest.approx(0.8) and not c.enable_scale_to_zero
    )


def test_config_legacy_fraction_utilization() -> None:
    assert (
        parse_config_autoscaler({"container-concurrency-target-percentage": "0.5"}).target_utilization == 0.5
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stable-window", "5s"),
        ("stable-window", "2h"),
        ("stable-window", "6500ms"),
        ("stable-window", "sixty"),
        ("panic-window-percentage", "0.5"),
        ("panic-window-percentage", "101"),
        ("panic-threshold-percentage", "100"),
        ("panic-threshold-percentage", "1001"),
        ("max-scale-up-rate", "1"),
        ("max-scale-down-rate", "1.0"),
        ("container-concurrency-target-percentage", "0"),
        ("container-concurrency-target-percentage", "101"),
        ("requests-per-second-target-default", "0.001"),
        ("target-burst-capacity", "-2"),
        ("scale-to-zero-grace-period", "0s"),
        ("scale-down-delay", "-1s"),
        ("scale-down-delay", "1500ms"),
        ("scale-to-zero-pod-retention-period", "-1s"),
        ("initial-scale", "0"),
        ("initial-scale", "-1"),
        ("max-scale-limit", "-1"),
        ("activation-scale", "0"),
        ("enable-scale-to-zero", "maybe"),
        ("max-scale", "1.5"),
    ],
)
def test_config_bounds_name_the_key(key: str, value: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_config_autoscaler({key: value})
    assert [e.path for e in info.value.errors] == [f"data[{key}]"]


def test_config_zero_initial_scale_when_allowed() -> None:
    assert (
        parse_config_autoscaler({"initial-scale": "0", "allow-zero-initial-scale": "true"}).initial_scale == 0
    )


def test_config_max_scale_within_limit() -> None:
    with pytest.raises(ManifestError):
        parse_config_autoscaler({"max-scale-limit": "10", "max-scale": "20"})
    with pytest.raises(ManifestError):
        parse_config_autoscaler({"max-scale-limit": "10"})  # max-scale 0 = unlimited exceeds the limit
    assert parse_config_autoscaler({"max-scale-limit": "10", "max-scale": "5"}).max_scale == 5


def test_config_defaults_map() -> None:
    d = parse_config_defaults({})
    assert d == DefaultsConfig()
    assert (d.revision_timeout_seconds, d.max_revision_timeout_seconds) == (300, 600)
    assert (d.container_concurrency, d.container_concurrency_max_limit) == (0, 1000)
    with pytest.raises(ManifestError) as info:
        parse_config_defaults({"revision-timeout-seconds": "700"})
    assert info.value.errors[0].path == "data[revision-timeout-seconds]"
    with pytest.raises(ManifestError) as info:
        parse_config_defaults({"container-concurrency": "1001"})
    assert info.value.errors[0].path == "data[container-concurrency]"
    with pytest.raises(ManifestError):
        parse_config_defaults({"container-concurrency": "ten"})


def test_go_durations() -> None:
    assert parse_go_duration("1m30s") == 90
    assert parse_go_duration("1.5h") == 5400
    assert parse_go_duration("500ms") == pytest.approx(0.5)
    assert parse_go_duration("0") == 0
    for bad in ("60", "1d", "", "s", " 1s"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)
    assert (format_go_duration(6), format_go_duration(3600), format_go_duration(90)) == (
        "6s",
        "1h0m0s",
        "1m30s",
    )


# -- annotations ------------------------------------------------------------------------------------


def test_valid_annotations_pass() -> None:
    anns = {
        A + "min-scale": "1",
        A + "max-scale": "10",
        A + "initial-scale": "2",
        A + "activation-scale": "2",
        A + "target": "50",
        A + "target-utilization-percentage": "80",
        A + "window": "2m",
        A + "panic-window-percentage": "20",
        A + "panic-threshold-percentage": "150",
        A + "metric": "rps",
        A + "scale-down-delay": "5m",
        A + "scale-to-zero-pod-retention-period": "1m5s",
        A + "target-burst-capacity": "-1",
        A + "class": "kpa.autoscaling.knative.dev",
        "unrelated.example.com/thing": "anything",
    }
    assert validate_annotations(anns) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("window", "5s"),
        ("window", "1h1s"),
        ("window", "6500ms"),
        ("panic-window-percentage", "0.9"),
        ("panic-window-percentage", "100.1"),
        ("panicWindowPercentage", "0"),
        ("panic-threshold-percentage", "109"),
        ("panic-threshold-percentage", "1000.5"),
        ("panicThresholdPercentage", "2000"),
        ("target", "0.001"),
        ("target", "x"),
        ("target-utilization-percentage", "0.5"),
        ("target-utilization-percentage", "101"),
        ("targetUtilizationPercentage", "200"),
        ("min-scale", "-1"),
        ("minScale", "one"),
        ("max-scale", "-3"),
        ("maxScale", "99999999999"),
        ("initial-scale", "0"),
        ("initialScale", "-2"),
        ("activation-scale", "0"),
        ("metric", "cpu"),
        ("metric", "memory"),
        ("scale-down-delay", "2h"),
        ("scale-down-delay", "1.5s"),
        ("scale-to-zero-pod-retention-period", "-1s"),
        ("target-burst-capacity", "-2"),
        ("class", "foo.autoscaling.knative.dev"),
        ("no-such-knob", "1"),
    ],
)
def test_each_bound_names_the_annotation(key: str, value: str) -> None:
    errs = errors_of({A + key: value})
    assert list(errs) == [f"[{A}{key}]"], errs


def test_max_scale_must_be_at_least_min_scale() -> None:
    errs = errors_of({A + "min-scale": "5", A + "max-scale": "2"})
    assert errs == {f"[{A}max-scale]": "must be >= min-scale"}
    errs = errors_of({A + "minScale": "5", A + "maxScale": "2"})
    assert errs == {f"[{A}maxScale]": "must be >= min-scale"}
    unlimited = AutoscalerConfig(max_scale=0, max_scale_limit=0)  # Knative's own defaults
    assert errors_of({A + "min-scale": "5", A + "max-scale": "0"}, config=unlimited) == {}  # 0 = unbounded


def test_error_nests_under_metadata_annotations() -> None:
    (err,) = validate_annotations({A + "max-scale": "1", A + "min-scale": "3"})
    nested = err.nested("spec.template.metadata.annotations")
    assert (
        str(nested)
        == "spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]: must be >= min-scale"
    )


def test_bounds_message_wording() -> None:
    assert errors_of({A + "window": "5s"}) == {f"[{A}window]": "expected 6s <= 5s <= 1h0m0s"}
    assert errors_of({A + "min-scale": "-1"}) == {f"[{A}min-scale]": "expected 0 <= -1 <= 2147483647"}
    assert errors_of({A + "target": "0"}) == {f"[{A}target]": "target 0 should be at least 0.01"}


def test_activation_scale_above_max_scale() -> None:
    errs = errors_of({A + "activation-scale": "5", A + "max-scale": "3"})
    assert list(errs) == [f"[{A}activation-scale]"]


def test_both_spellings_is_an_error() -> None:
    errs = errors_of({A + "min-scale": "1", A + "minScale": "1"})
    assert errs == {f"[{A}min-scale], [{A}minScale]": "expected exactly one, got both"}


def test_hpa_class_is_valid_and_accepts_cpu() -> None:
    assert validate_annotations({A + "class": "hpa.autoscaling.knative.dev", A + "metric": "cpu"}) == []
    assert validate_annotations({A + "class": "custom.example.com"}) == []


def test_zero_initial_scale_with_config() -> None:
    allow = AutoscalerConfig(allow_zero_initial_scale=True)
    assert validate_annotations({A + "initial-scale": "0"}, config=allow) == []


def test_max_scale_limit_from_config() -> None:
    cfg = AutoscalerConfig(max_scale_limit=10, max_scale=5)
    assert list(errors_of({A + "max-scale": "11"}, config=cfg)) == [f"[{A}max-scale]"]
    assert list(errors_of({A + "max-scale": "0"}, config=cfg)) == [f"[{A}max-scale]"]


# -- resolve_scaling ---------------------------------------------------------------------------------


def test_resolve_defaults_with_container_concurrency() -> None:
    s = resolve_scaling({}, 10, AutoscalerConfig())
    assert s.target_value == pytest.approx(10 * 0.7)
    assert s.total_value == 10
    assert (s.stable_window, s.panic_window, s.panic_threshold) == (60, 6, 2.0)
    assert s.supported


def test_resolve_without_container_concurrency_uses_default_target() -> None:
    assert resolve_scaling({}, 0, AutoscalerConfig()).target_value == pytest.approx(100 * 0.7)


def test_resolve_target_annotation_capped_by_container_concurrency() -> None:
    s = resolve_scaling({A + "target": "50"}, 10, AutoscalerConfig())
    assert s.total_value == 10 and s.target_value == pytest.approx(10 * 0.7)
    s = resolve_scaling({A + "target": "5", A + "targetUtilizationPercentage": "50"}, 10, AutoscalerConfig())
    assert s.target_value == pytest.approx(5 * 0.5)


def test_resolve_target_floor() -> None:
    s = resolve_scaling(
        {A + "target": "0.01", A + "target-utilization-percentage": "1"}, 0, AutoscalerConfig()
    )
    assert s.target_value == 0.01


def test_resolve_rps() -> None:
    s = resolve_scaling({A + "metric": "rps"}, 10, AutoscalerConfig())
    assert s.metric == "rps" and s.target_value == pytest.approx(200 * 0.7)


def test_resolve_legacy_spellings_and_overrides() -> None:
    anns = {
        A + "minScale": "2",
        A + "maxScale": "8",
        A + "initialScale": "3",
        A + "window": "100s",
        A + "panicWindowPercentage": "5",
        A + "panicThresholdPercentage": "300",
        A + "scaleDownDelay": "30s",
        A + "scaleToZeroPodRetentionPeriod": "1m",
        A + "activation-scale": "4",
    }
    s = resolve_scaling(anns, 0, AutoscalerConfig())
    assert (s.min_scale, s.max_scale, s.initial_scale, s.activation_scale) == (2, 8, 3, 4)
    assert (s.stable_window, s.panic_window, s.panic_threshold) == (100, 5, 3.0)
    assert (s.scale_down_delay, s.scale_to_zero_pod_retention_period) == (30, 60)


def test_resolve_config_overrides() -> None:
    cfg = parse_config_autoscaler(
        {"stable-window": "30s", "max-scale": "7", "scale-to-zero-grace-period": "10s"}
    )
    s = resolve_scaling({}, 0, cfg)
    assert (s.stable_window, s.panic_window, s.max_scale, s.scale_to_zero_grace_period) == (30, 3, 7, 10)


def test_resolve_hpa_is_unsupported() -> None:
    s = resolve_scaling(
        {A + "class": "hpa.autoscaling.knative.dev", A + "metric": "cpu"}, 0, AutoscalerConfig()
    )
    assert not s.supported and s.unsupported_reason is not None and "hpa" in s.unsupported_reason


def test_resolve_rejects_invalid_annotations() -> None:
    with pytest.raises(ManifestError) as info:
        resolve_scaling({A + "window": "1s"}, 0, AutoscalerConfig())
    assert info.value.errors[0].path == f"[{A}window]"
