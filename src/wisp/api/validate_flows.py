"""Validation of channels, subscriptions and flows, after knative/eventing's webhooks (messaging and flows).

Where Knative only checks that a `channelTemplate` names a kind, wisp also refuses a kind it cannot run: a
cluster would accept it and then fail to create the channel; on one machine the refusal names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wisp.api.durations import parse_iso8601_duration
from wisp.api.errors import FieldError
from wisp.api.validate_core import (
    Errors,
    as_list,
    as_mapping,
    disallowed,
    missing,
    string_in,
    unknown_fields,
    validate_metadata,
)
from wisp.api.validate_eventing import validate_delivery, validate_destination
from wisp.types import Resource

# The channel kinds wisp runs, as (apiVersion, kind).
SERVED_CHANNEL_TEMPLATES = frozenset({("messaging.knative.dev/v1", "InMemoryChannel"),
                                      ("messaging.knative.dev/v1beta1", "KafkaChannel"),
                                      ("messaging.knative.dev/v1", "KafkaChannel")})
# A local Kafka's topics; a real cluster takes more, but a channel's partitions bound its consumers here.
MAX_KAFKA_CHANNEL_PARTITIONS = 100
# Knative sets no bound; wisp runs every step and branch in the daemon.
MAX_STEPS = 100
MAX_BRANCHES = 100
MAX_SUBSCRIBERS = 1000
SCOPE_ANNOTATION = "eventing.knative.dev/scope"
_DESTINATION_FIELDS = ("ref", "uri", "CACerts", "audience")


def validate_channel_template(value: object, path: str) -> Errors:
    errs: Errors = []
    template = as_mapping(value, path, errs)
    if template is None:
        return errs or [missing(path)]
    errs.extend(unknown_fields(template, ("apiVersion", "kind", "spec"), path))
    api_version = string_in(template.get("apiVersion"), f"{path}.apiVersion", errs, required=True)
    kind = string_in(template.get("kind"), f"{path}.kind", errs, required=True)
    as_mapping(template.get("spec"), f"{path}.spec", errs)
    if api_version and kind and (api_version, kind) not in SERVED_CHANNEL_TEMPLATES:
        served = ", ".join(f"{k} ({v})" for v, k in sorted(SERVED_CHANNEL_TEMPLATES))
        field = "kind" if kind not in {k for _, k in SERVED_CHANNEL_TEMPLATES} else "apiVersion"
        errs.append(FieldError(f"{path}.{field}",
                               f"channel kind {kind!r} at {api_version!r} is not one wisp runs; served: {served}"))
    return errs


def _subscribers(value: object, path: str) -> Errors:
    """A channelable's `spec.subscribers`, as its controller writes them: each needs a subscriber or reply URI."""
    errs: Errors = []
    items = as_list(value, path, errs) or []
    if len(items) > MAX_SUBSCRIBERS:
        errs.append(FieldError(path, f"at most {MAX_SUBSCRIBERS} subscribers"))
    for i, item in enumerate(items[:MAX_SUBSCRIBERS]):
        entry = as_mapping(item, f"{path}[{i}]", errs)
        if entry is None:
            continue
        if not entry.get("subscriberUri") and not entry.get("replyUri"):
            errs.append(FieldError(f"{path}[{i}]", "expected at least one of, got none: replyUri, subscriberUri"))
        errs.extend(validate_delivery(entry.get("delivery"), f"{path}[{i}].delivery"))
    return errs


def _scope(res: Resource) -> Errors:
    annotations = (res.get("metadata") or {}).get("annotations") or {}
    scope = annotations.get(SCOPE_ANNOTATION)
    if scope is not None and scope not in ("cluster", "namespace"):
        return [FieldError(f"metadata.annotations[{SCOPE_ANNOTATION}]",
                           f"invalid value: {scope}: expected either 'cluster' or 'namespace'")]
    return []


def validate_in_memory_channel(res: Resource) -> Errors:
    errs = validate_metadata(res) + _scope(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("delivery", "subscribers"), "spec"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    errs.extend(_subscribers(spec.get("subscribers"), "spec.subscribers"))
    return errs


def validate_kafka_channel(res: Resource) -> Errors:
    """eventing-kafka-broker's KafkaChannel webhook."""
    errs = validate_metadata(res) + _scope(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("numPartitions", "replicationFactor", "retentionDuration", "delivery",
                                      "subscribers"), "spec"))
    for field, upper in (("numPartitions", MAX_KAFKA_CHANNEL_PARTITIONS), ("replicationFactor", 32767)):
        value = spec.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= upper:
            errs.append(FieldError(f"spec.{field}", f"invalid value: {value}: expected 1 <= {field} <= {upper}"))
    retention = spec.get("retentionDuration")
    try:
        ok = isinstance(retention, str) and parse_iso8601_duration(retention) >= 0
    except ValueError:
        ok = False
    if not ok:
        errs.append(FieldError("spec.retentionDuration", f"invalid value: {retention}: an ISO-8601 duration"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    errs.extend(_subscribers(spec.get("subscribers"), "spec.subscribers"))
    return errs


def validate_channel(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("channelTemplate", "delivery", "subscribers"), "spec"))
    errs.extend(validate_channel_template(spec.get("channelTemplate"), "spec.channelTemplate"))
    if spec.get("subscribers"):
        errs.append(disallowed("spec.subscribers", "a Channel's subscribers come from its Subscriptions"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    return errs


def validate_subscription(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.channel"), missing("spec.subscriber")]
    errs.extend(unknown_fields(spec, ("channel", "subscriber", "reply", "delivery"), "spec"))
    channel = as_mapping(spec.get("channel"), "spec.channel", errs)
    if not channel:
        if "channel" not in spec or channel == {}:
            errs.append(FieldError("spec.channel", "missing field(s): the Subscription must reference a channel"))
    else:
        errs.extend(unknown_fields(channel, ("apiVersion", "kind", "name", "namespace"), "spec.channel"))
        for field in ("apiVersion", "kind", "name"):
            string_in(channel.get(field), f"spec.channel.{field}", errs, required=True)
        if channel.get("namespace"):
            errs.append(disallowed("spec.channel.namespace",
                                   "only name, apiVersion and kind are supported (no cross-namespace links)"))
    if not spec.get("subscriber"):
        errs.append(FieldError("spec.subscriber", "missing field(s): the Subscription must reference a subscriber"))
    else:
        errs.extend(validate_destination(spec.get("subscriber"), "spec.subscriber"))
    if spec.get("reply"):
        errs.extend(validate_destination(spec.get("reply"), "spec.reply"))
    errs.extend(validate_delivery(spec.get("delivery"), "spec.delivery"))
    return errs


def _step(value: object, path: str) -> Errors:
    errs: Errors = []
    step = as_mapping(value, path, errs)
    if step is None:
        return errs or [missing(path)]
    errs.extend(unknown_fields(step, (*_DESTINATION_FIELDS, "delivery"), path))
    errs.extend(validate_destination({k: v for k, v in step.items() if k in _DESTINATION_FIELDS}, path))
    errs.extend(validate_delivery(step.get("delivery"), f"{path}.delivery"))
    return errs


def _bounded_list(spec: Mapping[str, Any], field: str, limit: int, errs: Errors) -> list[Any]:
    items = as_list(spec.get(field), f"spec.{field}", errs)
    if not items:
        if items is not None or field not in spec:
            errs.append(missing(f"spec.{field}"))
        return []
    if len(items) > limit:
        errs.append(FieldError(f"spec.{field}", f"at most {limit} entries, got {len(items)}"))
        return items[:limit]
    return items


def validate_sequence(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.steps")]
    errs.extend(unknown_fields(spec, ("steps", "channelTemplate", "reply"), "spec"))
    for i, step in enumerate(_bounded_list(spec, "steps", MAX_STEPS, errs)):
        errs.extend(_step(step, f"spec.steps[{i}]"))
    errs.extend(validate_channel_template(spec.get("channelTemplate"), "spec.channelTemplate"))
    if spec.get("reply") is not None:
        errs.extend(validate_destination(spec["reply"], "spec.reply"))
    return errs


def validate_parallel(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.branches")]
    errs.extend(unknown_fields(spec, ("branches", "channelTemplate", "reply"), "spec"))
    for i, item in enumerate(_bounded_list(spec, "branches", MAX_BRANCHES, errs)):
        path = f"spec.branches[{i}]"
        branch = as_mapping(item, path, errs)
        if branch is None:
            continue
        errs.extend(unknown_fields(branch, ("filter", "subscriber", "reply", "delivery"), path))
        if branch.get("filter") is not None:
            errs.extend(validate_destination(branch["filter"], f"{path}.filter"))
        errs.extend(validate_destination(branch.get("subscriber"), f"{path}.subscriber"))
        if branch.get("reply") is not None:
            errs.extend(validate_destination(branch["reply"], f"{path}.reply"))
        errs.extend(validate_delivery(branch.get("delivery"), f"{path}.delivery"))
    errs.extend(validate_channel_template(spec.get("channelTemplate"), "spec.channelTemplate"))
    if spec.get("reply") is not None:
        errs.extend(validate_destination(spec["reply"], "spec.reply"))
    return errs


def immutable_flow_fields(kind: str, old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> Errors:
    """Knative's CheckImmutableFields: a Channel's spec (but its subscribers), a Subscription's channel, all of
    an EventType's spec."""
    if kind in ("Channel", "KafkaChannel"):
        before = {k: v for k, v in old_spec.items() if k != "subscribers"}
        after = {k: v for k, v in new_spec.items() if k != "subscribers"}
        if before != after:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            return [FieldError(f"spec.{changed[0]}", f"Immutable fields changed: a {kind}'s spec cannot change")]
    if kind == "EventType" and old_spec != new_spec:
        changed = sorted(k for k in set(old_spec) | set(new_spec) if old_spec.get(k) != new_spec.get(k))
        return [FieldError(f"spec.{changed[0]}", "Immutable fields changed: an EventType's spec cannot change")]
    if kind == "Subscription" and old_spec.get("channel") != new_spec.get("channel"):
        return [FieldError("spec.channel", f"field is immutable: {old_spec.get('channel')!r} → "
                                           f"{new_spec.get('channel')!r}")]
    return []
