"""What the store publishes for each write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wisp.api.kinds import Kind
from wisp.types import Resource

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class StoreEvent:
    type: EventType
    kind: Kind
    resource: Resource
    old: Resource | None = None  # the object before a MODIFIED (a label-selector watch needs both sides)
    deleted_at: int = 0  # a DELETED's own resourceVersion (`resource` is the last state, with its own)

    @property
    def version(self) -> int:
        """The resourceVersion this change made."""
        return self.deleted_at or int(self.resource["metadata"]["resourceVersion"])

    @property
    def key(self) -> tuple[Kind, str, str]:
        meta = self.resource["metadata"]
        return self.kind, meta.get("namespace", ""), meta["name"]
