"""Knative's `config-tracing` ConfigMap (namespace knative-serving): keys, defaults and the sampler it sets.

Keys, as Knative reads them (knative.dev/pkg tracing config), plus one of wisp's:

- `backend`: `none` (Knative's default: the ingress starts no trace), `zipkin` (spans also go to
  `zipkin-endpoint` as Zipkin v2 JSON) or `otlp` (wisp's: spans also go to `otlp-endpoint`, OTLP/HTTP protobuf;
  without an endpoint they stay in wisp's own store, which every backend fills);
- `zipkin-endpoint`: required with `backend: zipkin`; `otlp-endpoint`: optional with `backend: otlp`;
- `sample-rate`: the probability, 0 to 1, that the ingress starts a trace for a request that carries none
  (Knative's default 0.1); `debug: "true"` samples everything.

Knative has since moved these settings to `config-observability` (`tracing-protocol`: none, http/protobuf,
grpc or stdout; `tracing-endpoint`; `tracing-sampling-rate`); wisp reads that too, and when it sets
`tracing-protocol` it wins over `config-tracing` (`effective_tracing`).

Without either ConfigMap, wisp behaves as before it read them: traces that requests bring are continued and kept,
none is started. Unknown keys are ignored, as Knative does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from wisp.api.errors import FieldError, ManifestError

SYSTEM_NAMESPACE = "knative-serving"
CONFIG_TRACING = "config-tracing"
CONFIG_OBSERVABILITY = "config-observability"
PROTOCOLS = ("none", "http/protobuf", "grpc", "stdout")
Backend = Literal["none", "zipkin", "otlp"]
BACKENDS: tuple[Backend, ...] = ("none", "zipkin", "otlp")
DEFAULT_SAMPLE_RATE = 0.1  # Knative's
MAX_ENDPOINT_LENGTH = 2048
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class TracingConfig:
    backend: Backend = "none"
    sample_rate: float = DEFAULT_SAMPLE_RATE
    debug: bool = False
    zipkin_endpoint: str = ""
    otlp_endpoint: str = ""

    @property
    def effective_rate(self) -> float:
        """The rate the ingress samples new traces at: 0 with backend none, 1 in debug mode."""
        if self.backend == "none":
            return 0.0
        return 1.0 if self.debug else self.sample_rate

    @property
    def export_url(self) -> str:
        if self.backend == "zipkin":
            return self.zipkin_endpoint
        return self.otlp_endpoint if self.backend == "otlp" else ""


def sample_threshold(rate: float) -> int:
    """A new trace is sampled when its id's low 64 bits are below this (OpenTelemetry's TraceIdRatioBased
    rule, so any hop that sees the trace id takes the same decision); 0 = never, 2**64 = always."""
    return 1 << 64 if rate >= 1.0 else max(0, round(rate * (1 << 64)))


def sampled(trace_id: int, threshold: int) -> bool:
    return (trace_id & _MASK64) < threshold


def _url(key: str, raw: str, errors: list[FieldError]) -> str:
    value = raw.strip()
    if len(value) > MAX_ENDPOINT_LENGTH:
        errors.append(FieldError(f"data[{key}]", f"longer than {MAX_ENDPOINT_LENGTH} characters"))
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(FieldError(f"data[{key}]", f"must be an http(s) URL with a host, not {value[:200]!r}"))
        return ""
    try:
        _ = parts.port
    except ValueError:
        errors.append(FieldError(f"data[{key}]", f"invalid port in {value[:200]!r}"))
        return ""
    return value


def parse_config_tracing(data: Mapping[str, str]) -> TracingConfig:
    """A `TracingConfig` from the ConfigMap's data, or a ManifestError naming each bad key."""
    errors: list[FieldError] = []
    backend_raw = str(data.get("backend", "none")).strip()
    backend: Backend = "none"
    if backend_raw in BACKENDS:
        backend = backend_raw
    else:
        errors.append(FieldError("data[backend]", f"must be one of {', '.join(BACKENDS)}, not {backend_raw[:100]!r}"))
    rate = _rate(data, "sample-rate", errors)
    debug = False
    if "debug" in data:
        raw = str(data["debug"]).strip().lower()
        if raw not in ("true", "false"):
            errors.append(FieldError("data[debug]", f"must be true or false, not {raw[:100]!r}"))
        debug = raw == "true"
    zipkin = _url("zipkin-endpoint", str(data["zipkin-endpoint"]), errors) if data.get("zipkin-endpoint") else ""
    otlp = _url("otlp-endpoint", str(data["otlp-endpoint"]), errors) if data.get("otlp-endpoint") else ""
    if backend == "zipkin" and not zipkin and not any(e.path == "data[zipkin-endpoint]" for e in errors):
        errors.append(FieldError("data[zipkin-endpoint]", "is required when backend is zipkin"))
    if errors:
        raise ManifestError(errors)
    return TracingConfig(backend, rate, debug, zipkin, otlp)


def _rate(data: Mapping[str, str], key: str, errors: list[FieldError]) -> float:
    """A sampling rate from 0 to 1 (the default when absent or, with an error recorded, when not one)."""
    if key not in data:
        return DEFAULT_SAMPLE_RATE
    raw = str(data[key]).strip()
    try:
        rate = float(raw)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:  # NaN fails too
        errors.append(FieldError(f"data[{key}]", f"must be a number from 0 to 1, not {raw[:100]!r}"))
        return DEFAULT_SAMPLE_RATE
    return rate


def parse_config_observability(data: Mapping[str, str]) -> TracingConfig | None:
    """The tracing part of Knative's `config-observability`: None when it has no `tracing-protocol` (then
    `config-tracing` decides), or a ManifestError naming each bad key. `http/protobuf` exports over OTLP/HTTP to
    `tracing-endpoint`; `stdout` keeps spans in wisp's store only (read them at `/traces`); `grpc` (OTLP/gRPC)
    is refused: wisp exports over HTTP only."""
    if "tracing-protocol" not in data:
        return None
    errors: list[FieldError] = []
    protocol = str(data["tracing-protocol"]).strip()
    endpoint = str(data.get("tracing-endpoint", "")).strip()
    if protocol not in PROTOCOLS:
        errors.append(FieldError("data[tracing-protocol]",
                                 f"must be one of {', '.join(PROTOCOLS)}, not {protocol[:100]!r}"))
    elif protocol == "grpc":
        errors.append(FieldError("data[tracing-protocol]",
                                 "grpc (OTLP/gRPC) is not supported by wisp; use http/protobuf"))
    if protocol == "http/protobuf" and not endpoint:
        errors.append(FieldError("data[tracing-endpoint]", "is required when tracing-protocol is http/protobuf"))
    elif protocol == "none" and endpoint:
        errors.append(FieldError("data[tracing-endpoint]", "must not be set when tracing-protocol is none"))
    elif endpoint and protocol == "http/protobuf":
        endpoint = _url("tracing-endpoint", endpoint, errors)
    rate = _rate(data, "tracing-sampling-rate", errors)
    if errors:
        raise ManifestError(errors)
    if protocol == "none":
        return TracingConfig("none", rate)
    return TracingConfig("otlp", rate, otlp_endpoint=endpoint if protocol == "http/protobuf" else "")


def effective_tracing(
    tracing: Mapping[str, str] | None, observability: Mapping[str, str] | None
) -> TracingConfig | None:
    """What the two ConfigMaps (their data, None when absent) configure together: config-observability's
    tracing keys when it has them, else config-tracing, else None (nothing configured)."""
    from_observability = parse_config_observability(observability) if observability is not None else None
    if from_observability is not None:
        return from_observability
    return parse_config_tracing(tracing) if tracing is not None else None


class Sampler:
    """The ingress's sampling decision for requests that bring no trace; changed in place when config-tracing
    changes, read once per request (one attribute)."""

    __slots__ = ("rate", "threshold")

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate
        self.threshold = sample_threshold(rate)

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self.threshold = sample_threshold(rate)
