"""Errors raised while reading or validating manifests; each names the field path it is about."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, Knative-style: `spec.template.spec.containers[0].image: is required`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def nested(self, prefix: str) -> FieldError:
        """The same error seen from an enclosing object (`prefix` + `.` + path)."""
        if not self.path:
            return FieldError(prefix, self.message)
        joiner = "" if self.path.startswith("[") else "."
        return FieldError(f"{prefix}{joiner}{self.path}", self.message)


class ManifestError(Exception):
    """A manifest that cannot be applied. `where` names the file and document, `errors` each bad field."""

    def __init__(self, errors: Iterable[FieldError], where: str = "") -> None:
        self.errors = list(errors)
        self.where = where
        detail = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{where}: {detail}" if where else detail)

    def to_dict(self) -> dict[str, object]:
        return {
            "where": self.where,
            "errors": [{"field": e.path, "message": e.message} for e in self.errors],
        }


class UnknownKindError(LookupError):
    """A kind, plural or short name that wisp does not serve."""
