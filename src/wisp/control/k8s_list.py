"""List as the Kubernetes API server answers it: `{kind}List` with the store's resourceVersion, selectors, and
`limit`/`continue` pages that are one consistent list.

A continue token (opaque to clients, shaped like the API server's: base64 of the list's resourceVersion and the
key to start after) makes the next page come from the same point in time: the store's change history rolls the
current objects back to the first page's version (as etcd reads a page at a past revision). A token older than
that history is answered 410 Expired, and the client lists again from the start. The same roll-back answers
`resourceVersionMatch=Exact` (the list as it was at that version).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from wisp.api.kinds import Kind
from wisp.control.k8s_selectors import Selector
from wisp.control.refusal import Refused, bad_request
from wisp.store import Expired, Store
from wisp.types import Resource

TOO_OLD = ("The provided continue parameter is too old to display a consistent list result. You can start a new "
           "list without the continue parameter.")
TOO_OLD_VERSION = "The resourceVersion for the provided list is too old."


def _key(resource: Resource) -> str:
    meta = resource["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def encode_continue(version: int, after: str) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": version, "start": after + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        version, start = raw["rv"], raw["start"]
        if raw.get("v") != "meta.k8s.io/v1" or not isinstance(version, int) or not isinstance(start, str):
            raise ValueError("not a continue token")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request("continue key is not valid: the continue parameter must be one returned by a list")\
            from None
    return version, start.removesuffix("\x00")


def at_version(store: Store, kind: Kind, namespace: str | None, version: int,
               too_old: str = TOO_OLD) -> list[Resource]:
    """The kind's objects as they were at `version`: today's, with every later change undone."""
    try:
        later = store.watchers.history.since(version)
    except Expired:
        raise Refused(410, "Expired", too_old) from None
    objects = {_key(r): r for r in store.list(kind, namespace)}
    for _, event in reversed(later):
        if event.kind is not kind:
            continue
        meta = event.resource["metadata"]
        if namespace is not None and kind.namespaced and meta.get("namespace") != namespace:
            continue
        key = _key(event.resource)
        if event.type == "ADDED":
            objects.pop(key, None)
        elif event.old is not None:
            objects[key] = event.old
    return [objects[key] for key in sorted(objects, key=lambda k: tuple(k.split("/", 1)))]


def list_page(store: Store, kind: Kind, namespace: str | None, selector: Selector, params: dict[str, str],
              ) -> tuple[list[Resource], dict[str, Any]]:
    """(items, list metadata) for one list request."""
    limit = _limit(params.get("limit"))
    token = params.get("continue")
    if token:
        if params.get("resourceVersion") not in (None, ""):
            raise bad_request('specifying resource version is not allowed when using continue')
        version, after = decode_continue(token)
        objects = at_version(store, kind, namespace, version)
        objects = [r for r in objects if tuple(_key(r).split("/", 1)) > tuple(after.split("/", 1))]
    elif params.get("resourceVersionMatch") == "Exact":
        version = _exact(params.get("resourceVersion"), store.version())
        objects = at_version(store, kind, namespace, version, TOO_OLD_VERSION)
    else:  # unset, NotOlderThan, or "0": the latest is never older than what was asked
        version = store.version()
        objects = store.list(kind, namespace)
    matching = [r for r in objects if selector.matches(r)]
    meta: dict[str, Any] = {"resourceVersion": str(version)}
    if limit and len(matching) > limit:
        page = matching[:limit]
        meta["continue"] = encode_continue(version, _key(page[-1]))
        if selector.empty:  # with a selector the API server cannot know it, and leaves it out
            meta["remainingItemCount"] = len(matching) - limit
        return page, meta
    return matching, meta


def _exact(value: str | None, latest: int) -> int:
    try:
        version = int(value or "")
    except ValueError:
        raise bad_request("resourceVersionMatch=Exact needs a resourceVersion") from None
    if version > latest:
        raise Refused(504, "Timeout", f"Too large resource version: {version}, current: {latest}")
    return version


def _limit(value: str | None) -> int:
    if value in (None, ""):
        return 0
    assert value is not None
    try:
        limit = int(value)
    except ValueError:
        raise bad_request(f"limit must be an integer: {value!r}") from None
    return max(limit, 0)
