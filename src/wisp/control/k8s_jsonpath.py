"""The simple JSONPath of CRD printer columns, evaluated as kube-apiserver's table convertor does.

Supported (what Knative's CRDs and Kubernetes' `additionalPrinterColumns` validation allow): `.field`,
backslash-escaped dots inside a field name (`.metadata.annotations.eventing\\.knative\\.dev/broker\\.class`),
`['key']` / `["key"]`, `[n]`, `[*]`, and the filter `[?(@.a.b=='x')]` (also `!=`, double quotes, numbers).
A path that finds nothing gives no value (an empty cell), as in Kubernetes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_PATH_LENGTH = 512


class JSONPathError(ValueError):
    """A path outside the supported subset."""


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int | None  # None: every element ([*])


@dataclass(frozen=True)
class _Filter:
    path: tuple[str, ...]
    op: str  # == or !=
    value: Any


_Step = _Field | _Index | _Filter
_FILTER = re.compile(r"""^\?\(@((?:\.[A-Za-z0-9_\-]+)+)\s*(==|!=)\s*"""
                     r"""(?:'([^']*)'|"([^"]*)"|(-?\d+(?:\.\d+)?)|(true|false))\)$""")


@functools.lru_cache(maxsize=256)
def parse(path: str) -> tuple[_Step, ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if len(text) > MAX_PATH_LENGTH:
        raise JSONPathError(f"JSONPath longer than {MAX_PATH_LENGTH} characters")
    text = text.removeprefix("$")
    steps: list[_Step] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ".":
            name, i = _read_name(text, i + 1)
            if not name:
                raise JSONPathError(f"empty field name at {i} in {path!r}")
            steps.append(_Field(name))
        elif char == "[":
            end = _bracket_end(text, i, path)
            steps.append(_bracket(text[i + 1:end], path))
            i = end + 1
        else:
            raise JSONPathError(f"unexpected {char!r} at {i} in {path!r}")
    return tuple(steps)


def _read_name(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text) and text[i] not in ".[":
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out), i


def _bracket_end(text: str, start: int, path: str) -> int:
    quote: str | None = None
    for j in range(start + 1, len(text)):
        char = text[j]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "]":
            return j
    raise JSONPathError(f"unclosed [ in {path!r}")


def _bracket(inner: str, path: str) -> _Step:
    inner = inner.strip()
    if inner == "*":
        return _Index(None)
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _Field(inner[1:-1].replace("\\.", "."))
    if re.fullmatch(r"-?\d+", inner):
        return _Index(int(inner))
    match = _FILTER.match(inner)
    if match is None:
        raise JSONPathError(f"unsupported expression [{inner}] in {path!r}")
    fields, op, single, double, number, boolean = match.groups()
    value: Any
    if single is not None or double is not None:
        value = single if single is not None else double
    elif number is not None:
        value = json.loads(number)
    else:
        value = boolean == "true"
    return _Filter(tuple(fields.strip(".").split(".")), op, value)


def find(document: Any, path: str) -> list[Any]:
    """Every value the path selects, in document order."""
    current = [document]
    for step in parse(path):
        found: list[Any] = []
        for node in current:
            if isinstance(step, _Field):
                if isinstance(node, dict) and step.name in node:
                    found.append(node[step.name])
            elif isinstance(step, _Index):
                if isinstance(node, list):
                    if step.index is None:
                        found.extend(node)
                    elif -len(node) <= step.index < len(node):
                        found.append(node[step.index])
                elif step.index is None and isinstance(node, dict):
                    found.extend(node.values())
            elif isinstance(node, list):
                found.extend(item for item in node if _matches(item, step))
        current = found
    return current


def _matches(item: Any, step: _Filter) -> bool:
    value: Any = item
    for name in step.path:
        if not isinstance(value, dict) or name not in value:
            return False
        value = value[name]
    return bool(value == step.value) if step.op == "==" else bool(value != step.value)


MISSING: Any = object()
Getter = Callable[[Any], Any]


def first(document: Any, path: str) -> Any:
    """The first value `find` would give (MISSING when none). `kubectl get` evaluates every column of every
    row: the path is compiled once into nested closures, so a cell costs a few dictionary lookups."""
    return compile_first(path)(document)


@functools.lru_cache(maxsize=256)
def compile_first(path: str) -> Getter:
    getter: Getter = _identity
    for step in reversed(parse(path)):
        getter = _compile_step(step, getter)
    return getter


def _identity(node: Any) -> Any:
    return node


def _compile_step(step: _Step, rest: Getter) -> Getter:
    if isinstance(step, _Field):
        name = step.name

        def field(node: Any) -> Any:
            return rest(node[name]) if type(node) is dict and name in node else MISSING
        return field
    if isinstance(step, _Index) and step.index is not None:
        index = step.index

        def item(node: Any) -> Any:
            return rest(node[index]) if type(node) is list and -len(node) <= index < len(node) else MISSING
        return item
    if isinstance(step, _Index):
        def every(node: Any) -> Any:
            children = node if type(node) is list else node.values() if type(node) is dict else ()
            return _first_of(children, rest)
        return every
    condition = step

    def matching(node: Any) -> Any:
        if type(node) is not list:
            return MISSING
        return _first_of((item for item in node if _matches(item, condition)), rest)
    return matching


def _first_of(children: Any, rest: Getter) -> Any:
    for child in children:
        found = rest(child)
        if found is not MISSING:
            return found
    return MISSING
