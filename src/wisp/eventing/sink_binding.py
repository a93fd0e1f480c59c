"""SinkBinding: the environment (`K_SINK`, `K_CE_OVERRIDES`) a binding injects into the workloads it selects.

Pure functions: the daemon resolves the sink (a Knative Destination) to a URL and merges the env into each
instance of a matching Service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wisp.types import Resource

__all__ = ["ResolveSink", "binding_matches", "env_for_subject", "selector_matches", "sink_binding_env"]

# (destination `{ref: ...}` / `{uri: ...}`, the binding's namespace) → absolute URL
ResolveSink = Callable[[Mapping[str, Any], str], str]


def _namespace(resource: Resource) -> str:
    return str((resource.get("metadata") or {}).get("namespace") or "default")


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (`matchLabels` and `matchExpressions`) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key"), expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def binding_matches(binding: Resource, subject: Resource) -> bool:
    """Does the binding's `spec.subject` select this resource?

    The subject matches by apiVersion's group (a Service of serving.knative.dev/v1 matches a subject written
    with another version of the group) and kind, in the subject's namespace (the binding's by default), then
    by `name` or by `selector`.
    """
    spec = binding.get("spec") or {}
    want = spec.get("subject") or {}
    if not want:
        return False
    if _group(str(want.get("apiVersion", ""))) != _group(str(subject.get("apiVersion", ""))):
        return False
    if want.get("kind") != subject.get("kind"):
        return False
    if str(want.get("namespace") or _namespace(binding)) != _namespace(subject):
        return False
    meta = subject.get("metadata") or {}
    if want.get("name"):
        return bool(want["name"] == meta.get("name"))
    selector = want.get("selector")
    if isinstance(selector, Mapping):
        return selector_matches(selector, meta.get("labels") or {})
    return False


def sink_binding_env(binding: Resource, resolve_sink: ResolveSink) -> dict[str, str]:
    """`K_SINK` (the resolved sink URL) and, when `ceOverrides` is set, `K_CE_OVERRIDES` (its JSON)."""
    spec = binding.get("spec") or {}
    env = {"K_SINK": resolve_sink(spec.get("sink") or {}, _namespace(binding))}
    overrides = spec.get("ceOverrides")
    if overrides:
        env["K_CE_OVERRIDES"] = json.dumps(overrides, separators=(",", ":"), sort_keys=True)
    return env


def env_for_subject(
    bindings: Iterable[Resource], subject: Resource, resolve_sink: ResolveSink
) -> dict[str, str]:
    """The env every matching binding injects into `subject` (bindings in name order; the last one wins)."""
    env: dict[str, str] = {}
    ordered = sorted(bindings, key=lambda b: str((b.get("metadata") or {}).get("name", "")))
    for binding in ordered:
        if binding_matches(binding, subject):
            env.update(sink_binding_env(binding, resolve_sink))
    return env
