"""Validation of eventing kinds, after knative/eventing's and eventing-kafka-broker's webhooks."""

from __future__ import annotations

import base64
import binascii
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from croniter import croniter

from wisp.api.cesql import CesqlSyntaxError, compile_cesql
from wisp.api.durations import parse_iso8601_duration
from wisp.api.errors import FieldError
from wisp.api.validate_core import (
    Errors,
    as_list,
    as_mapping,
    invalid,
    is_int,
    missing,
    string_in,
    string_map,
    unknown_fields,
    validate_metadata,
)
from wisp.types import Resource

# Alibaba's KafkaSource delivery annotations (the seed), each a non-negative number of seconds or retries.
ALIYUN_KAFKA_ANNOTATIONS = (
    "k8s.aliyun.com/req-timeout",
    "k8s.aliyun.com/retry-count",
    "k8s.aliyun.com/retry-interval",
)
# Knative sets no upper bound (each consumer is a pod there); wisp runs them all as tasks of the daemon.
MAX_KAFKA_CONSUMERS = 100
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+\Z")  # \Z: `$` would allow a trailing newline
_FILTER_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
_CRON_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\Z")


# -- shared shapes -------------------------------------------------------------------------------------


def validate_destination(value: object, path: str, *, required: bool = True) -> Errors:
    """Knative's duckv1.Destination: `ref` and/or `uri` (absolute alone, relative to the ref with one)."""
    errs: Errors = []
    dest = as_mapping(value, path, errs)
    if dest is None:
        return errs or ([missing(path)] if required else [])
    errs.extend(unknown_fields(dest, ("ref", "uri", "CACerts", "audience"), path))
    ref = as_mapping(dest.get("ref"), f"{path}.ref", errs)
    uri = string_in(dest.get("uri"), f"{path}.uri", errs)
    if ref is None and uri is None:
        if not errs:
            errs.append(FieldError(path, "expected at least one, got none: ref, uri"))
        return errs
    if ref is not None:
        errs.extend(validate_kreference(ref, f"{path}.ref"))
    if uri is not None:
        absolute = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", uri) is not None
        if ref is not None and absolute:
            errs.append(invalid(uri, f"{path}.uri", "an absolute URI is not allowed together with ref"))
        if ref is None and not absolute:
            errs.append(invalid(uri, f"{path}.uri", "a relative URI is not allowed without ref"))
    return errs


def validate_kreference(ref: Mapping[str, Any], path: str) -> Errors:
    errs: Errors = []
    errs.extend(unknown_fields(ref, ("apiVersion", "kind", "name", "namespace", "group", "address"), path))
    string_in(ref.get("kind"), f"{path}.kind", errs, required=True)
    string_in(ref.get("name"), f"{path}.name", errs, required=True)
    if not ref.get("group"):
        string_in(ref.get("apiVersion"), f"{path}.apiVersion", errs, required=True)
    string_in(ref.get("namespace"), f"{path}.namespace", errs)
    return errs


def validate_delivery(value: object, path: str) -> Errors:
    """Knative's DeliverySpec."""
    errs: Errors = []
    delivery = as_mapping(value, path, errs)
    if delivery is None:
        return errs
    errs.extend(
        unknown_fields(
            delivery,
            (
                "deadLetterSink",
                "retry",
                "backoffPolicy",
                "backoffDelay",
                "timeout",
                "retryAfterMax",
                "format",
            ),
            path,
        )
    )
    if delivery.get("deadLetterSink") is not None:
        errs.extend(validate_destination(delivery["deadLetterSink"], f"{path}.deadLetterSink"))
    retry = delivery.get("retry")
    if retry is not None and (not is_int(retry) or retry < 0):
        errs.append(invalid(retry, f"{path}.retry", "must be an integer >= 0"))
    policy = delivery.get("backoffPolicy")
    if policy is not None and policy not in ("linear", "exponential"):
        errs.append(invalid(policy, f"{path}.backoffPolicy", "must be linear or exponential"))
    for field in ("backoffDelay", "timeout", "retryAfterMax"):
        text = delivery.get(field)
        if text is None:
            continue
        try:
            seconds = parse_iso8601_duration(text) if isinstance(text, str) else -1.0
        except ValueError:
            seconds = -1.0
        if seconds < 0 or (field == "timeout" and seconds == 0):
            errs.append(
                invalid(text, f"{path}.{field}", "must be a positive ISO-8601 duration such as PT0.2S")
            )
    fmt = delivery.get("format")
    if fmt is not None and fmt not in ("json", "binary"):
        errs.append(invalid(fmt, f"{path}.format", "must be json or binary"))
    return errs


def _secret_value(value: object, path: str) -> Errors:
    """A `{secretKeyRef: {name, key}}` as KafkaSource's `net` fields take them."""
    errs: Errors = []
    source = as_mapping(value, path, errs)
    if source is None:
        return errs
    errs.extend(unknown_fields(source, ("secretKeyRef",), path))
    ref = as_mapping(source.get("secretKeyRef"), f"{path}.secretKeyRef", errs)
    if ref is None:
        return [*errs, missing(f"{path}.secretKeyRef")] if "secretKeyRef" not in source else errs
    errs.extend(unknown_fields(ref, ("name", "key", "optional"), f"{path}.secretKeyRef"))
    string_in(ref.get("name"), f"{path}.secretKeyRef.name", errs, required=True)
    string_in(ref.get("key"), f"{path}.secretKeyRef.key", errs, required=True)
    return errs


def _bool(value: object, path: str) -> Errors:
    return [] if value is None or isinstance(value, bool) else [invalid(value, path, "must be true or false")]


def _ce_overrides(value: object, path: str) -> Errors:
    errs: Errors = []
    overrides = as_mapping(value, path, errs)
    if overrides is None:
        return errs
    errs.extend(unknown_fields(overrides, ("extensions",), path))
    extensions = as_mapping(overrides.get("extensions"), f"{path}.extensions", errs) or {}
    for key in extensions:
        if not _ATTRIBUTE_NAME.match(str(key)):
            errs.append(
                FieldError(
                    f"{path}.extensions[{key}]",
                    f"invalid key name {key!r}: CloudEvents attribute names are lowercase letters and digits",
                )
            )
    return errs


def ce_overrides(value: object, path: str) -> Errors:
    """Knative's CloudEventOverrides (`ceOverrides`) of any source."""
    return _ce_overrides(value, path)


# -- KafkaSource ---------------------------------------------------------------------------------------


def validate_kafka_source(res: Resource) -> Errors:
    errs = validate_metadata(res)
    errs.extend(_aliyun_annotations(res))
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec")]
    errs.extend(
        unknown_fields(
            spec,
            (
                "bootstrapServers",
                "topics",
                "consumerGroup",
                "initialOffset",
                "consumers",
                "ordering",
                "net",
                "sink",
                "ceOverrides",
                "delivery",
                "selector",
                "resources",
                "placements",
                "reply",
            ),
            "spec",
        )
    )
    for field in ("topics", "bootstrapServers"):
        items = as_list(spec.get(field), f"spec.{field}", errs)
        if not items:
            if items is not None or field not in spec:
                errs.append(missing(f"spec.{field}"))
            continue
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                errs.append(invalid(item, f"spec.{field}[{i}]", "must be a non-empty string"))
    string_in(spec.get("consumerGroup"), "spec.consumerGroup", errs, required=True)
    offset = spec.get("initialOffset")
    if offset not in ("earliest", "latest"):
        errs.append(invalid(offset, "spec.initialOffset", "must be earliest or latest"))
    ordering = spec.get("ordering")
    if ordering not in ("ordered", "unordered"):
        errs.append(invalid(ordering, "spec.ordering", "must be ordered or unordered"))
    consumers = spec.get("consumers")
    if not isinstance(consumers, int) or isinstance(consumers, bool) or consumers < 1:
        errs.append(invalid(consumers, "spec.consumers", "must be an integer >= 1"))
    elif consumers > MAX_KAFKA_CONSUMERS:
        errs.append(
            FieldError(
                "spec.consumers",
                f"expected 1 <= {consumers} <= {MAX_KAFKA_CONSUMERS}: wisp runs a KafkaSource's consumers "
                "in its one process (and a consumer beyond the topics' partition count gets no records)",
            )
        )
    errs.extend(_kafka_net(spec.get("net"), "spec.net"))
    errs.extend(validate_destination(spec.get("sink"), "spec.sink"))
    errs.extend(_ce_overrides(spec.get("ceOverrides"), "spec.ceOverrides"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    return errs


def _kafka_net(value: object, path: str) -> Errors:
    errs: Errors = []
    net = as_mapping(value, path, errs)
    if net is None:
        return errs
    errs.extend(unknown_fields(net, ("sasl", "tls"), path))
    for section, secrets in (("sasl", ("user", "password", "type")), ("tls", ("cert", "key", "caCert"))):
        spath = f"{path}.{section}"
        part = as_mapping(net.get(section), spath, errs)
        if part is None:
            continue
        errs.extend(unknown_fields(part, ("enable", *secrets), spath))
        errs.extend(_bool(part.get("enable"), f"{spath}.enable"))
        for secret in secrets:
            errs.extend(_secret_value(part.get(secret), f"{spath}.{secret}"))
    return errs


def _aliyun_annotations(res: Resource) -> Errors:
    annotations = res.get("metadata", {}).get("annotations")
    values = string_map(annotations, "")
    errs: Errors = []
    for key in ALIYUN_KAFKA_ANNOTATIONS:
        if key not in values:
            continue
        try:
            number = float(values[key])
        except ValueError:
            number = -1.0
        if not number >= 0 or (key.endswith("retry-count") and not number.is_integer()):
            kind = "integer" if key.endswith("retry-count") else "number"
            errs.append(
                invalid(values[key], f"metadata.annotations[{key}]", f"must be a non-negative {kind}")
            )
    return errs


# -- PingSource ----------------------------------------------------------------------------------------


def validate_ping_source(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.sink")]
    errs.extend(
        unknown_fields(
            spec, ("schedule", "timezone", "contentType", "data", "dataBase64", "sink", "ceOverrides"), "spec"
        )
    )
    timezone = string_in(spec.get("timezone"), "spec.timezone", errs)
    if timezone is not None and not _is_zone(timezone):
        errs.append(invalid(timezone, "spec.timezone", "must be an IANA time zone such as Europe/Paris"))
    schedule = string_in(spec.get("schedule"), "spec.schedule", errs, required=True)
    if schedule is not None:
        errs.extend(validate_schedule(schedule, "spec.schedule", has_timezone=timezone is not None))
    string_in(spec.get("contentType"), "spec.contentType", errs)
    string_in(spec.get("data"), "spec.data", errs)
    data64 = string_in(spec.get("dataBase64"), "spec.dataBase64", errs)
    if spec.get("data") and data64 is not None:
        errs.append(FieldError("spec", "expected exactly one, got both: data, dataBase64"))
    elif data64 is not None and not _is_base64(data64):
        errs.append(invalid(data64, "spec.dataBase64", "must be base64-encoded"))
    errs.extend(validate_destination(spec.get("sink"), "spec.sink"))
    errs.extend(_ce_overrides(spec.get("ceOverrides"), "spec.ceOverrides"))
    return errs


def validate_schedule(schedule: str, path: str, *, has_timezone: bool = False) -> Errors:
    """A cron schedule as robfig/cron's ParseStandard reads it: 5 fields, descriptors, `@every`, TZ prefix."""
    expr = schedule.strip()
    if expr.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, expr = expr.partition(" ")
        zone = prefix.partition("=")[2]
        if has_timezone:
            return [invalid(schedule, path, "set either spec.timezone or a CRON_TZ= prefix, not both")]
        if not _is_zone(zone):
            return [invalid(schedule, path, f"unknown time zone {zone!r}")]
        expr = expr.strip()
    if expr.startswith("@every "):
        if _GO_DURATION.match(expr[len("@every ") :].strip()):
            return []
        return [invalid(schedule, path, "@every needs a duration such as 1m30s")]
    if expr in _CRON_DESCRIPTORS:
        return []
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        return [
            invalid(schedule, path, "must be a cron schedule of 5 fields (minute hour day month weekday)")
        ]
    return []


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# -- SinkBinding ---------------------------------------------------------------------------------------


def validate_sink_binding(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.subject"), missing("spec.sink")]
    errs.extend(unknown_fields(spec, ("subject", "sink", "ceOverrides"), "spec"))
    subject = as_mapping(spec.get("subject"), "spec.subject", errs)
    if subject is None:
        if "subject" not in spec:
            errs.append(missing("spec.subject"))
    else:
        errs.extend(
            unknown_fields(subject, ("apiVersion", "kind", "name", "namespace", "selector"), "spec.subject")
        )
        string_in(subject.get("apiVersion"), "spec.subject.apiVersion", errs, required=True)
        string_in(subject.get("kind"), "spec.subject.kind", errs, required=True)
        has_name, has_selector = bool(subject.get("name")), subject.get("selector") is not None
        if has_name == has_selector:
            got = "both" if has_name else "neither"
            errs.append(FieldError("spec.subject", f"expected exactly one, got {got}: name, selector"))
        as_mapping(subject.get("selector"), "spec.subject.selector", errs)
    errs.extend(validate_destination(spec.get("sink"), "spec.sink"))
    errs.extend(_ce_overrides(spec.get("ceOverrides"), "spec.ceOverrides"))
    return errs


# -- Broker and Trigger --------------------------------------------------------------------------------


def validate_broker(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("config", "delivery"), "spec"))
    config = as_mapping(spec.get("config"), "spec.config", errs)
    if config is not None:
        errs.extend(unknown_fields(config, ("apiVersion", "kind", "name", "namespace"), "spec.config"))
        string_in(config.get("kind"), "spec.config.kind", errs, required=True)
        string_in(config.get("name"), "spec.config.name", errs, required=True)
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    return errs


def validate_trigger(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.subscriber")]
    errs.extend(
        unknown_fields(spec, ("broker", "brokerRef", "filter", "filters", "subscriber", "delivery"), "spec")
    )
    string_in(spec.get("broker"), "spec.broker", errs, required=True)
    filter_spec = as_mapping(spec.get("filter"), "spec.filter", errs)
    if filter_spec is not None:
        errs.extend(unknown_fields(filter_spec, ("attributes",), "spec.filter"))
        attributes = as_mapping(filter_spec.get("attributes"), "spec.filter.attributes", errs) or {}
        errs.extend(_attributes(attributes, "spec.filter.attributes", allow_empty=True))
    filters = as_list(spec.get("filters"), "spec.filters", errs) or []
    for i, item in enumerate(filters):
        errs.extend(validate_filter(item, f"spec.filters[{i}]"))
    errs.extend(validate_destination(spec.get("subscriber"), "spec.subscriber"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    return errs


def _attributes(values: Mapping[Any, Any], path: str, *, allow_empty: bool) -> Errors:
    errs: Errors = []
    for key, value in values.items():
        kpath = f"{path}[{key}]"
        if not isinstance(key, str) or not _ATTRIBUTE_NAME.match(key):
            errs.append(
                FieldError(
                    kpath, f"invalid key name {key!r}: attribute names are lowercase letters and digits"
                )
            )
        elif not isinstance(value, str):
            errs.append(invalid(value, kpath, "must be a string (quote it in YAML)"))
        elif not allow_empty and not value:
            errs.append(invalid(value, kpath, "must not be empty"))
    return errs


def validate_filter(value: object, path: str) -> Errors:
    """One SubscriptionsAPI filter: exactly one dialect, recursively for all/any/not."""
    errs: Errors = []
    filt = as_mapping(value, path, errs)
    if filt is None:
        return errs or [missing(path)]
    errs.extend(unknown_fields(filt, _FILTER_DIALECTS, path))
    # As in Knative, an empty dialect (`exact: {}`) does not count as one.
    dialects = [d for d in _FILTER_DIALECTS if filt.get(d)]
    if len(dialects) > 1:
        errs.append(
            FieldError(
                path, "multiple dialects found, filters can have only one dialect set: " + ", ".join(dialects)
            )
        )
    if not dialects and not errs:
        errs.append(FieldError(path, "expected exactly one, got neither: " + ", ".join(_FILTER_DIALECTS)))
    for dialect in dialects:
        dpath = f"{path}.{dialect}"
        body = filt[dialect]
        if dialect in ("exact", "prefix", "suffix"):
            attrs = as_mapping(body, dpath, errs)
            if attrs is not None:
                if len(attrs) > 1:
                    errs.append(FieldError(dpath, "multiple items found, can have only one key-value"))
                errs.extend(_attributes(attrs, dpath, allow_empty=dialect == "exact"))
        elif dialect in ("all", "any"):
            for i, item in enumerate(as_list(body, dpath, errs) or []):
                errs.extend(validate_filter(item, f"{dpath}[{i}]"))
        elif dialect == "not":
            errs.extend(validate_filter(body, dpath))
        else:
            errs.extend(_cesql(body, dpath))
    return errs


def _cesql(value: object, path: str) -> Errors:
    """A CESQL expression must parse, as Knative's webhook requires (the dispatcher uses the same parser)."""
    if not isinstance(value, str) or not value.strip():
        return [invalid(value, path, "must be a CESQL expression")]
    try:
        compile_cesql(value)
    except CesqlSyntaxError as exc:
        return [invalid(value, path, str(exc))]
    return []
