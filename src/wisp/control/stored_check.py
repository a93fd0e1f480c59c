"""At start, before anything reconciles them, stored objects are checked as the API checks what it is sent.

An object whose bytes changed on disk (its checksum), or that admission would refuse today (a manual edit, a
validator grown stricter since), is set aside: moved to the store's `set_aside` table, kept there for the user,
and neither served nor reconciled, so no reconciler acts on a spec nobody applied. What it owns stays as it is
and is adopted again when its manifest is re-applied. Each one is reported by name with the reason.
"""

from __future__ import annotations

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.admission import SYSTEM_NAMESPACE, admit
from wisp.control.secret_scrub import scrub
from wisp.store import Store
from wisp.types import Resource


def check_stored(store: Store, where: str) -> list[str]:
    """Set aside every stored object that cannot be trusted or no longer validates; one message for each.

    `where` names the database in the messages (its path).
    """
    reports: list[str] = []
    for row in store.damaged():
        store.set_aside(row.kind_key, row.namespace, row.name, row.reason)
        reports.append(_report(row.describe(), row.reason, where))
    # The cluster ConfigMaps first: admission judges everything else by them, so a bad one must go before.
    for kind, resource in sorted(store.all(), key=_system_first):
        meta = resource["metadata"]
        try:
            admit([resource], store)
        except ManifestError as exc:
            reason = "it no longer passes validation: " + "; ".join(str(e) for e in scrub(exc, [resource]).errors)
            store.set_aside(f"{kind.group}/{kind.plural}", meta.get("namespace", ""), meta["name"], reason)
            reports.append(_report(_describe(kind, resource), reason, where))
    return reports


def _system_first(item: tuple[Kind, Resource]) -> bool:
    kind, resource = item
    return not (kind is k.CONFIG_MAP and resource["metadata"].get("namespace") == SYSTEM_NAMESPACE)


def _describe(kind: Kind, resource: Resource) -> str:
    meta = resource["metadata"]
    namespace = meta.get("namespace")
    return f"{kind.kind} {namespace + '/' if namespace else ''}{meta['name']}"


def _report(what: str, reason: str, where: str) -> str:
    return (f"{what} was set aside and is neither served nor reconciled: {reason}. It is kept in {where} "
            "(table set_aside); apply its manifest again to restore it")
