"""Which of the closed set of function signatures a target has, and loading the target.

The signatures are in architecture.md: runtime contract.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Literal

from cloudevents.v1.http import CloudEvent

Signature = Literal["http", "cloudevent", "asgi"]
SIGNATURES: tuple[Signature, ...] = ("http", "cloudevent", "asgi")

# Set by the `wisp.http` / `wisp.cloudevent` decorators (src/wisp/__init__.py); the names must match.
SIGNATURE_ATTRIBUTE = "__wisp_signature__"


class TargetError(Exception):
    """The function target names nothing usable (bad `module:attr`, missing attribute, not callable)."""


def load_target(target: str) -> Any:
    """Import `module:attr` (attr may be dotted) as `FUNCTION_TARGET` names it; ImportErrors propagate."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise TargetError(f"function target {target!r} must look like 'module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(
                f"function target {target!r}: {module_name} has no attribute {attr_path!r}"
            ) from None
    if not callable(obj):
        raise TargetError(f"function target {target!r} is a {type(obj).__name__}, not a callable")
    return obj


def detect_signature(obj: Any) -> Signature:
    """Decorated → as recorded; one param named `event` or annotated CloudEvent → cloudevent;
    three params (scope, receive, send) → asgi; anything else → http."""
    recorded = getattr(obj, SIGNATURE_ATTRIBUTE, None)
    if recorded in SIGNATURES:
        return recorded  # type: ignore[no-any-return]
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return "http"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) == 3:
        return "asgi"
    if len(positional) == 1:
        param = positional[0]
        annotation = param.annotation
        if param.name == "event" or annotation is CloudEvent:
            return "cloudevent"
        # `from __future__ import annotations` leaves the annotation as a string.
        if isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "CloudEvent":
            return "cloudevent"
    return "http"


def is_async(obj: Any) -> bool:
    """True for coroutine functions and for objects whose __call__ is one."""
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - we want the method, not callable()
    return inspect.iscoroutinefunction(call)
