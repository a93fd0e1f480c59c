"""wisp's user-facing API for functions: the signature decorators, and the request/event types.

    import wisp

    @wisp.http
    def handle(request: wisp.Request) -> dict: ...

    @wisp.cloudevent
    def handle(event: wisp.CloudEvent) -> wisp.CloudEvent | None: ...

The decorators only record the signature; an undecorated `handle(event)` is a cloudevent function too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from cloudevents.v1.http import CloudEvent
from starlette.requests import Request

F = TypeVar("F", bound=Callable[..., Any])

# Read by wisp.serving.workloads.signatures; the two spellings must match.
_SIGNATURE_ATTRIBUTE = "__wisp_signature__"


def _record(signature: str) -> Callable[[F], F]:
    def mark(func: F) -> F:
        setattr(func, _SIGNATURE_ATTRIBUTE, signature)
        return func

    return mark


@overload
def http(func: F) -> F: ...
@overload
def http() -> Callable[[F], F]: ...
def http(func: F | None = None) -> F | Callable[[F], F]:
    """Mark `func(request: Request)` as an http function.

    It returns a Response, str, bytes, dict/list (JSON) or `(body, status)`.
    """
    mark: Callable[[F], F] = _record("http")
    return mark if func is None else mark(func)


@overload
def cloudevent(func: F) -> F: ...
@overload
def cloudevent() -> Callable[[F], F]: ...
def cloudevent(func: F | None = None) -> F | Callable[[F], F]:
    """Mark `func(event: CloudEvent)` as a cloudevent function (returns a reply CloudEvent or None)."""
    mark: Callable[[F], F] = _record("cloudevent")
    return mark if func is None else mark(func)


__all__ = ["CloudEvent", "Request", "cloudevent", "http"]
