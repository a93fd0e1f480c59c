"""`fieldValidation` as the API server applies it to a body's unknown fields (those its schema does not declare).

- Strict: 400 BadRequest, `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`;
- Warn (the API server's default): the fields are dropped and each is named in a `Warning: 299` header;
- Ignore: the fields are dropped silently.
`status` is not checked: the main resource ignores it (it has the status subresource).
"""

from __future__ import annotations

from typing import Any, Literal

from wisp.api import schemas
from wisp.api.kinds import Kind
from wisp.control.refusal import bad_request

Directive = Literal["Strict", "Warn", "Ignore"]
Schema = dict[str, Any]


def directive(value: str | None) -> Directive:
    if value in (None, ""):
        return "Warn"
    if value in ("Strict", "Warn", "Ignore"):
        return value  # type: ignore[return-value]
    raise bad_request(f'fieldValidation parameter unsupported: "{value}" (Strict, Warn or Ignore)')


def checked(kind: Kind, version: str, body: dict[str, Any], how: Directive) -> tuple[dict[str, Any], list[str]]:
    """(the body without its unknown fields, a warning for each); Refused under Strict when there are any."""
    unknown: list[str] = []
    schema = schemas.schema_for(kind, version)
    pruned = {key: value for key, value in body.items() if key == "status"}
    rest = _prune({k: v for k, v in body.items() if k != "status"}, schema, "", unknown)
    pruned.update(rest)
    if not unknown:
        return body, []
    unknown.sort()
    if how == "Strict":
        raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{path}"' for path in unknown))
    return pruned, ([] if how == "Ignore" else [f'unknown field "{path}"' for path in unknown])


def _prune(value: Any, schema: Schema, path: str, unknown: list[str]) -> Any:
    if isinstance(value, dict) and schema.get("type") == "object":
        properties: dict[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if schema.get("x-kubernetes-preserve-unknown-fields") or extra is True:
            extra = extra if isinstance(extra, dict) else None
            open_ended = True
        else:
            open_ended = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in properties:
                out[key] = _prune(item, properties[key], where, unknown)
            elif isinstance(extra, dict):
                out[key] = _prune(item, extra, f"{path}[{key}]", unknown)
            elif open_ended:
                out[key] = item
            else:
                unknown.append(where)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(item, schema["items"], f"{path}[{index}]", unknown) for index, item in enumerate(value)]
    return value
