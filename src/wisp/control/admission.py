"""Admission: default and validate a batch of manifests against the store, all or nothing."""

from __future__ import annotations

from wisp.api import kinds as k
from wisp.api.autoscaling import AutoscalerConfig, DefaultsConfig, parse_config_autoscaler, parse_config_defaults
from wisp.api.defaults import RevisionDefaults, apply_defaults
from wisp.api.defaults_flows import (
    DEFAULT_CH_WEBHOOK,
    EVENTING_NAMESPACE,
    ChannelDefaults,
    parse_default_ch_config,
)
from wisp.api.errors import FieldError, ManifestError, UnknownKindError
from wisp.api.kinds import Kind, for_manifest
from wisp.api.validation import validate, validate_update
from wisp.observability.tracing_config import (
    CONFIG_OBSERVABILITY,
    CONFIG_TRACING,
    parse_config_observability,
    parse_config_tracing,
)
from wisp.store import ApplyResult, Store
from wisp.types import Resource


def describe(resource: object) -> str:
    if not isinstance(resource, dict):
        return f"a {type(resource).__name__}, not an object"
    meta = resource.get("metadata") or {}
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    return f"{resource.get('kind', '?')}/{name}"


SYSTEM_NAMESPACE = "knative-serving"
CONFIG_AUTOSCALER = "config-autoscaler"
CONFIG_DEFAULTS = "config-defaults"


# Annotations of the seed's platform that mean nothing on one machine: accepted, reported, ignored.
IGNORED_ANNOTATIONS = (
    "fc.revision.serving.knative.aliyun.com/role-arm",
    "fc.revision.serving.knative.aliyun.com/code-space",
)


def warnings_for(resource: Resource) -> list[str]:
    """What the user should know about an accepted manifest (kubectl prints these as `Warning:`)."""
    metas = [resource.get("metadata") or {}]
    template = (resource.get("spec") or {}).get("template") if isinstance(resource.get("spec"), dict) else None
    if isinstance(template, dict):
        metas.append(template.get("metadata") or {})
    found = {key for meta in metas for key in (meta.get("annotations") or {}) if key in IGNORED_ANNOTATIONS}
    return [f"{describe(resource)}: annotation {key} has no effect on one machine and is ignored"
            for key in sorted(found)]


def _is_system(kind: Kind, resource: Resource, name: str) -> bool:
    meta = resource.get("metadata", {})
    return kind is k.CONFIG_MAP and meta.get("namespace") == SYSTEM_NAMESPACE and meta.get("name") == name


def _data(resource: Resource) -> dict[str, str]:
    return {str(key): str(v) for key, v in (resource.get("data") or {}).items()}


def _autoscaler_config(store: Store) -> AutoscalerConfig:
    stored = store.get(k.CONFIG_MAP, SYSTEM_NAMESPACE, CONFIG_AUTOSCALER)
    return parse_config_autoscaler(_data(stored)) if stored else AutoscalerConfig()


def _as_revision_defaults(config: DefaultsConfig) -> RevisionDefaults:
    return RevisionDefaults(config.revision_timeout_seconds, config.container_concurrency)


def _revision_defaults(store: Store) -> RevisionDefaults:
    stored = store.get(k.CONFIG_MAP, SYSTEM_NAMESPACE, CONFIG_DEFAULTS)
    return _as_revision_defaults(parse_config_defaults(_data(stored))) if stored else RevisionDefaults()


def _is_default_ch(kind: Kind, resource: Resource) -> bool:
    meta = resource.get("metadata", {})
    return (kind is k.CONFIG_MAP and meta.get("namespace") == EVENTING_NAMESPACE
            and meta.get("name") == DEFAULT_CH_WEBHOOK)


def _channel_defaults(store: Store) -> ChannelDefaults:
    stored = store.get(k.CONFIG_MAP, EVENTING_NAMESPACE, DEFAULT_CH_WEBHOOK)
    return parse_default_ch_config(_data(stored)) if stored else ChannelDefaults()


def validate_system_config(kind: Kind, resource: Resource) -> list[FieldError]:
    """Knative's cluster ConfigMaps are checked like Knative's config webhook: a bad value is refused
    and the configuration in force stays."""
    if _is_default_ch(kind, resource):
        try:
            parse_default_ch_config(_data(resource))
        except ManifestError as exc:
            return exc.errors
    for name, parse in ((CONFIG_AUTOSCALER, parse_config_autoscaler), (CONFIG_DEFAULTS, parse_config_defaults),
                        (CONFIG_TRACING, parse_config_tracing), (CONFIG_OBSERVABILITY, parse_config_observability)):
        if _is_system(kind, resource, name):
            try:
                parse(_data(resource))
            except ManifestError as exc:
                return exc.errors
    return []


def admit(items: list[Resource], store: Store) -> list[tuple[Kind, Resource]]:
    """Every item defaulted and validated, or a ManifestError naming every bad field of the first bad item."""
    admitted: list[tuple[Kind, Resource]] = []
    autoscaler = _autoscaler_config(store)
    revision_defaults = _revision_defaults(store)
    channel_defaults = _channel_defaults(store)
    for index, raw in enumerate(items):
        where = f"item {index} ({describe(raw)})"
        if not isinstance(raw, dict):
            raise ManifestError([FieldError("", "must be an object")], where)
        try:
            kind = for_manifest(str(raw.get("apiVersion", "")), str(raw.get("kind", "")))
        except UnknownKindError as exc:
            raise ManifestError([FieldError("kind", str(exc))], where) from None
        resource = apply_defaults(raw, revision_defaults, channel_defaults=channel_defaults)
        errors = validate(resource, autoscaler=autoscaler)
        meta = resource.get("metadata", {})
        if not errors:
            current = store.get(kind, meta.get("namespace", "default"), meta.get("name", ""))
            if current is not None:
                errors = validate_update(current, resource)
        errors += validate_system_config(kind, resource)
        if errors:
            raise ManifestError(errors, where)
        if _is_system(kind, resource, CONFIG_AUTOSCALER):
            # Later documents of the same batch are judged by the configuration this batch sets.
            autoscaler = parse_config_autoscaler(_data(resource))
        if _is_system(kind, resource, CONFIG_DEFAULTS):
            revision_defaults = _as_revision_defaults(parse_config_defaults(_data(resource)))
        if _is_default_ch(kind, resource):
            channel_defaults = parse_default_ch_config(_data(resource))
        admitted.append((kind, resource))
    return admitted


def apply_manifests(items: list[Resource], store: Store) -> list[ApplyResult]:
    """The one apply (control API, `wisp up`, tests): admit the whole batch, then write it in one
    transaction: every item, or none."""
    return store.apply(admit(items, store))
