"""Knative-style status conditions: Ready plus its dependents, each True/False/Unknown with reason and message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wisp.api.timestamps import rfc3339

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str = ""
    message: str = ""

    @staticmethod
    def true(type_: str) -> Condition:
        return Condition(type_, "True")

    @staticmethod
    def false(type_: str, reason: str, message: str) -> Condition:
        return Condition(type_, "False", reason, message)

    @staticmethod
    def unknown(type_: str, reason: str, message: str = "") -> Condition:
        return Condition(type_, "Unknown", reason, message)


def render(conditions: list[Condition], previous: list[dict[str, Any]] | None, now: float) -> list[dict[str, Any]]:
    """Conditions as status JSON; a condition keeps its lastTransitionTime while its status holds."""
    before = {c.get("type"): c for c in previous or []}
    out: list[dict[str, Any]] = []
    for cond in sorted(conditions, key=lambda c: c.type):
        old = before.get(cond.type)
        since = old.get("lastTransitionTime") if old and old.get("status") == cond.status else None
        item: dict[str, Any] = {"type": cond.type, "status": cond.status,
                                "lastTransitionTime": since or rfc3339(now)}
        if cond.reason:
            item["reason"] = cond.reason
        if cond.message:
            item["message"] = cond.message
        out.append(item)
    return out


def summarize(ready_type: str, dependents: list[Condition]) -> Condition:
    """The Ready condition from its dependents: False if any is False, Unknown if any is Unknown."""
    for cond in dependents:
        if cond.status == "False":
            return Condition(ready_type, "False", cond.reason, cond.message)
    for cond in dependents:
        if cond.status == "Unknown":
            return Condition(ready_type, "Unknown", cond.reason, cond.message)
    return Condition.true(ready_type)


def is_ready(resource: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in resource.get("status", {}).get("conditions", []))


def get_condition(resource: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in resource.get("status", {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return None
