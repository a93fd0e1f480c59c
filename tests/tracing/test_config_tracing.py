"""config-tracing parsing and the sampler's rule."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.control.admission import apply_manifests
from wisp.observability.tracing_config import (
    DEFAULT_SAMPLE_RATE,
    Sampler,
    TracingConfig,
    effective_tracing,
    parse_config_observability,
    parse_config_tracing,
    sample_threshold,
    sampled,
)
from wisp.store import Store


def test_knative_defaults_and_the_three_backends() -> None:
    assert parse_config_tracing({}) == TracingConfig("none", DEFAULT_SAMPLE_RATE)
    assert parse_config_tracing({}).effective_rate == 0.0  # backend none starts no trace
    zipkin = parse_config_tracing({"backend": "zipkin", "zipkin-endpoint": "http://z:9411/api/v2/spans",
                                   "sample-rate": "0.25"})
    assert (zipkin.effective_rate, zipkin.export_url) == (0.25, "http://z:9411/api/v2/spans")
    otlp = parse_config_tracing({"backend": "otlp", "sample-rate": "1"})
    assert (otlp.effective_rate, otlp.export_url) == (1.0, "")  # wisp's own store only
    assert parse_config_tracing({"backend": "otlp", "sample-rate": "0", "debug": "true"}).effective_rate == 1.0
    assert parse_config_tracing({"backend": "none", "unknown-key": "x"}).backend == "none"


@pytest.mark.parametrize(("data", "path"), [
    ({"backend": "jaeger"}, "data[backend]"),
    ({"backend": "otlp", "sample-rate": "1.5"}, "data[sample-rate]"),
    ({"backend": "otlp", "sample-rate": "-0.1"}, "data[sample-rate]"),
    ({"backend": "otlp", "sample-rate": "nan"}, "data[sample-rate]"),
    ({"backend": "otlp", "sample-rate": "ten percent"}, "data[sample-rate]"),
    ({"backend": "otlp", "debug": "yes"}, "data[debug]"),
    ({"backend": "zipkin"}, "data[zipkin-endpoint]"),
    ({"backend": "zipkin", "zipkin-endpoint": "zipkin:9411"}, "data[zipkin-endpoint]"),
    ({"backend": "otlp", "otlp-endpoint": "ftp://collector/v1/traces"}, "data[otlp-endpoint]"),
    ({"backend": "otlp", "otlp-endpoint": "http://collector:99999/v1/traces"}, "data[otlp-endpoint]"),
    ({"backend": "otlp", "otlp-endpoint": "http://c/" + "a" * 3000}, "data[otlp-endpoint]"),
])
def test_bad_values_are_refused_naming_the_key(data: dict[str, str], path: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_config_tracing(data)
    assert [e.path for e in caught.value.errors] == [path]
    assert path in str(caught.value)


@given(st.dictionaries(st.sampled_from(["backend", "sample-rate", "debug", "zipkin-endpoint", "otlp-endpoint", "x"]),
                       st.text(max_size=40)))
def test_any_data_parses_or_names_its_bad_keys(data: dict[str, str]) -> None:
    try:
        config = parse_config_tracing(data)
    except ManifestError as exc:
        assert exc.errors
        assert all((e.path.startswith("data[") and e.path[5:-1] in data) or e.path == "data[zipkin-endpoint]"
                   for e in exc.errors)
    else:
        assert 0.0 <= config.effective_rate <= 1.0


def test_the_decision_is_a_function_of_the_trace_id() -> None:
    assert sample_threshold(0.0) == 0 and not sampled(1, 0)
    assert sampled((1 << 128) - 1, sample_threshold(1.0))  # every id at rate 1
    threshold = sample_threshold(0.25)
    rng = random.Random(7)
    ids = [rng.getrandbits(128) for _ in range(20_000)]
    decisions = [sampled(i, threshold) for i in ids]
    assert decisions == [sampled(i, threshold) for i in ids]  # the same id, the same answer
    assert 0.23 < sum(decisions) / len(ids) < 0.27
    sampler = Sampler()
    sampler.set_rate(0.5)
    assert sampler.threshold == 1 << 63


def test_apply_refuses_a_bad_config_tracing_naming_the_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", lambda: 0.0)
    store.open()
    try:
        bad = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "config-tracing", "namespace": "knative-serving"},
               "data": {"backend": "zipkin", "sample-rate": "2"}}
        with pytest.raises(ManifestError) as caught:
            apply_manifests([bad], store)
        assert sorted(e.path for e in caught.value.errors) == ["data[sample-rate]", "data[zipkin-endpoint]"]
        assert store.get(k.CONFIG_MAP, "knative-serving", "config-tracing") is None  # nothing half-applied
        good = {**bad, "data": {"backend": "otlp", "sample-rate": "0.5"}}
        apply_manifests([good], store)
        assert store.get(k.CONFIG_MAP, "knative-serving", "config-tracing") is not None
    finally:
        store.close()


def test_config_observability_tracing_keys_and_which_configmap_wins() -> None:
    otlp = parse_config_observability({"tracing-protocol": "http/protobuf",
                                       "tracing-endpoint": "http://jaeger:4318/v1/traces",
                                       "tracing-sampling-rate": "1", "metrics-protocol": "prometheus"})
    assert otlp == TracingConfig("otlp", 1.0, otlp_endpoint="http://jaeger:4318/v1/traces")
    assert parse_config_observability({"tracing-protocol": "stdout", "tracing-sampling-rate": "0.5"}) == \
        TracingConfig("otlp", 0.5)  # spans in wisp's store only
    assert parse_config_observability({"metrics-protocol": "prometheus"}) is None  # no tracing keys
    zipkin = {"backend": "zipkin", "zipkin-endpoint": "http://z/api/v2/spans"}
    assert effective_tracing(zipkin, None) == parse_config_tracing(zipkin)
    assert effective_tracing(zipkin, {"tracing-protocol": "none"}) == TracingConfig("none", DEFAULT_SAMPLE_RATE)
    assert effective_tracing(None, None) is None


@pytest.mark.parametrize(("data", "path"), [
    ({"tracing-protocol": "grpc", "tracing-endpoint": "http://c:4317"}, "data[tracing-protocol]"),
    ({"tracing-protocol": "zipkin"}, "data[tracing-protocol]"),
    ({"tracing-protocol": "http/protobuf"}, "data[tracing-endpoint]"),
    ({"tracing-protocol": "none", "tracing-endpoint": "http://c:4318"}, "data[tracing-endpoint]"),
    ({"tracing-protocol": "stdout", "tracing-sampling-rate": "2"}, "data[tracing-sampling-rate]"),
])
def test_bad_config_observability_tracing_is_refused_naming_the_key(data: dict[str, str], path: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_config_observability(data)
    assert [e.path for e in caught.value.errors] == [path]
