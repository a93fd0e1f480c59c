"""The one call wisp's own hops (ingress, event dispatch) make to record a span: the contract, not the store."""

from __future__ import annotations

from typing import Any, Protocol


class SpanRecorder(Protocol):
    def now_ns(self) -> int: ...

    def record_span(self, trace_id: str, span_id: str, parent_id: str | None, name: str, service: str,
                    start_ns: int, end_ns: int, attributes: dict[str, Any] | None = None, *,
                    kind: str = "SERVER", error: str | None = None) -> None: ...

    def record_request(self, trace_id: str, span_id: str, parent_id: str | None, start_ns: int, end_ns: int,
                       namespace: str, revision: str, host: str, status: int, method: str) -> None: ...
