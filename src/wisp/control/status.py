"""Writing a reconciled object's status: its conditions rendered, Ready derived when not given."""

from __future__ import annotations

from typing import Any

from wisp.api.kinds import Kind
from wisp.control.conditions import Condition, render, summarize
from wisp.store import Store
from wisp.types import Resource


def write_status(store: Store, kind: Kind, resource: Resource, status: dict[str, Any],
                 conditions: list[Condition], now: float, extra: list[Condition] | None = None) -> None:
    """Store `status` with `conditions` (plus Ready summarised from them unless present) and `extra`
    conditions that do not count towards Ready; a condition keeps its transition time while it holds."""
    if not any(c.type == "Ready" for c in conditions):
        conditions = [*conditions, summarize("Ready", conditions)]
    previous = resource.get("status", {}).get("conditions")
    status["conditions"] = render([*conditions, *(extra or [])], previous, now)
    meta = resource["metadata"]
    store.put_status(kind, meta.get("namespace", ""), meta["name"], status)
