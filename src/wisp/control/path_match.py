"""A body sent to a resource's path must be that resource: its apiVersion, kind, name and namespace.

Refused with the Kubernetes API server's own codes and messages, so clients and users meet what they know:
- core kinds (v1 Secret, ConfigMap, Namespace) are compiled-in types there, and a body of any other type fails
  to decode: 400 `Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to
  (core.ConfigMap): unknown conversion`;
- Knative kinds are custom resources there: a body of another group/version is refused by the create/update
  handler, 400 `the API version in the data (v1) does not match the expected API version
  (serving.knative.dev/v1)`; one of another kind in the same group/version fails the custom resource's type
  check, 422 `Route.serving.knative.dev "x" is invalid: kind: Invalid value: "Service": must be Route`;
- the name on PUT: 400 `the name of the object (x) does not match the name on the URL (y)`;
- the namespace: 400 `the namespace of the provided object does not match the namespace sent on the request`.
A body without apiVersion or kind takes the path's (the API server's decoder defaults them from the path), one
without a namespace takes the path's, and a cluster-scoped kind's namespace is cleared.
"""

from __future__ import annotations

import copy
from typing import Any

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.refusal import Refused, bad_request
from wisp.types import Resource


def match_path(kind: Kind, version: str, body: Resource, namespace: str | None, name: str | None) -> Resource:
    """A copy of `body` with apiVersion, kind and namespace as the path says; Refused if it names another object.

    `version` is the path's version, `namespace` the path's (None for a cluster-scoped path) and `name` the
    path's on PUT (None on create).
    """
    out = copy.copy(body)
    expected = f"{kind.group}/{version}" if kind.group else version
    api_version = out.get("apiVersion") or expected
    kind_name = out.get("kind") or kind.kind
    if not isinstance(api_version, str) or not isinstance(kind_name, str):
        raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): "
                          "apiVersion and kind must be strings")
    out["apiVersion"], out["kind"] = api_version, kind_name
    if not kind.group:
        _check_core_type(kind, api_version, kind_name)
    elif api_version != expected:
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version "
                          f"({expected})")
    meta = out.get("metadata")
    if meta is None:
        meta = {}
    if isinstance(meta, dict):
        meta = out["metadata"] = dict(meta)
        if name is not None and meta.get("name") != name:
            raise bad_request(f"the name of the object ({_shown(meta.get('name'))}) does not match the name on "
                              f"the URL ({name})")
        _match_namespace(kind, meta, namespace)
    elif name is not None:
        raise bad_request(f"the name of the object () does not match the name on the URL ({name})")
    if kind_name != kind.kind:
        raise _wrong_custom_kind(kind, kind_name, meta.get("name") if isinstance(meta, dict) else None)
    return out


def _check_core_type(kind: Kind, api_version: str, kind_name: str) -> None:
    if (api_version, kind_name) == (kind.api_version, kind.kind):
        return
    version = api_version.rpartition("/")[2]
    try:
        k.for_manifest(api_version, kind_name)
        detail = f"converting ({version}.{kind_name}) to (core.{kind.kind}): unknown conversion"
    except LookupError:
        detail = f'no kind "{kind_name}" is registered for version "{api_version}"'
    raise bad_request(f'{kind_name} in version "{version}" cannot be handled as a {kind.kind}: {detail}')


def _match_namespace(kind: Kind, meta: dict[str, Any], namespace: str | None) -> None:
    if not kind.namespaced:
        meta.pop("namespace", None)
        return
    given = meta.get("namespace")
    if not given:
        meta["namespace"] = namespace or "default"
    elif namespace is not None and given != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")


def _wrong_custom_kind(kind: Kind, given: str, name: object) -> Refused:
    qualified = f"{kind.kind}.{kind.group}"
    cause = f'Invalid value: "{given}": must be {kind.kind}'
    details = {"name": _shown(name), "group": kind.group, "kind": kind.kind,
               "causes": [{"reason": "FieldValueInvalid", "message": cause, "field": "kind"}]}
    return Refused(422, "Invalid", f'{qualified} "{_shown(name)}" is invalid: kind: {cause}', details)


def _shown(value: object) -> str:
    return "" if value is None else str(value)
