"""Label and field selectors, as the Kubernetes API server parses and applies them on list, watch and
collection delete.

Labels: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`, comma-separated (all must
hold). Fields: `metadata.name` and `metadata.namespace` with `=`, `==`, `!=` — the two a custom resource
supports (more need selectableFields in its CRD, which Knative's do not declare); any other is refused with
the API server's `field label not supported`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from wisp.control.refusal import bad_request
from wisp.types import Resource

MAX_SELECTOR = 4096  # characters; a selector is a query parameter, kept well under any URL limit

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*")
_COMPARE = re.compile(rf"\s*({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})\s*")
_SET_VALUE = re.compile(rf"\s*({_VALUE})\s*")
_FIELD = re.compile(r"\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*([^,]*?)\s*")

FIELDS = ("metadata.name", "metadata.namespace")

Predicate = Callable[[Resource], bool]


@dataclass(frozen=True)
class Selector:
    """Both selectors of one request; `matches` is true when the object satisfies every requirement."""

    labels: tuple[Predicate, ...] = ()
    fields: tuple[Predicate, ...] = ()
    name: str | None = None  # metadata.name=X, when given (kubectl get NAME -w, kubectl wait)

    def matches(self, resource: Resource) -> bool:
        return all(p(resource) for p in self.labels) and all(p(resource) for p in self.fields)

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields


def parse(label_selector: str | None, field_selector: str | None) -> Selector:
    """Both selectors, or Refused (400 BadRequest) naming what could not be parsed."""
    labels = tuple(_label_requirement(part) for part in _split(label_selector or "", "labelSelector"))
    fields: list[Predicate] = []
    name = None
    for part in _split(field_selector or "", "fieldSelector"):
        match = _FIELD.fullmatch(part)
        if match is None:
            raise bad_request(f"invalid selector: '{field_selector}'; can't understand '{part.strip()}'")
        field, op, value = match.groups()
        if field not in FIELDS:
            raise bad_request(f"field label not supported: {field}")
        if field == "metadata.name" and op != "!=":
            name = value
        fields.append(_field_predicate(field, op != "!=", value))
    return Selector(labels, tuple(fields), name)


def _split(text: str, what: str) -> list[str]:
    if len(text) > MAX_SELECTOR:
        raise bad_request(f"{what} is longer than {MAX_SELECTOR} characters")
    if not text.strip():
        return []
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _labels(resource: Resource) -> dict[str, str]:
    labels = resource.get("metadata", {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _label_requirement(text: str) -> Predicate:
    match = _SET.fullmatch(text)
    if match is not None:
        key, op, listed = match.groups()
        values = set()
        for item in listed.split(","):
            value = _SET_VALUE.fullmatch(item)
            if value is None:
                raise bad_request(f"unable to parse requirement: invalid label value: {item.strip()!r}")
            values.add(value.group(1))
        if values == {""} and not listed.strip():
            raise bad_request(f"unable to parse requirement: for '{op}', set must not be empty")
        if op == "in":
            return lambda r: _labels(r).get(key) in values
        return lambda r: _labels(r).get(key) not in values
    compare = _COMPARE.fullmatch(text)
    if compare is not None:
        key, op, wanted = compare.groups()
        if op in (">", "<"):
            return _numeric(key, op, wanted)
        if op == "!=":
            return lambda r: _labels(r).get(key) != wanted
        return lambda r: _labels(r).get(key) == wanted
    match = _EXISTS.fullmatch(text)
    if match is not None and match.group(2):
        negated, key = match.groups()
        if negated:
            return lambda r: key not in _labels(r)
        return lambda r: key in _labels(r)
    raise bad_request(f"unable to parse requirement: {text.strip()!r} is not a label requirement "
                      "(key, !key, key=value, key!=value, key in (a,b), key notin (a,b))")


def _numeric(key: str, op: str, value: str) -> Predicate:
    try:
        bound = int(value)
    except ValueError:
        raise bad_request(f"unable to parse requirement: for '{op}', the value must be an integer: {value!r}") \
            from None

    def holds(resource: Resource) -> bool:
        try:
            have = int(_labels(resource)[key])
        except (KeyError, ValueError):
            return False
        return have > bound if op == ">" else have < bound

    return holds


def _field_predicate(field: str, equal: bool, value: str) -> Predicate:
    attribute = field.partition(".")[2]
    return lambda r: (str(r.get("metadata", {}).get(attribute, "")) == value) == equal
