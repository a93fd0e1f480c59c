"""A request the control API refuses, as the Kubernetes `Status` object it is answered with."""

from __future__ import annotations

import json
from typing import Any


class Refused(Exception):
    """Raised anywhere under the control API; answered as a failure `Status` with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body

    def body(self) -> bytes:
        return json.dumps(self.status()).encode()


def bad_request(message: str) -> Refused:
    return Refused(400, "BadRequest", message)


def method_not_allowed() -> Refused:
    # Kubernetes' words for a verb a resource does not serve (e.g. POST to an all-namespaces collection).
    return Refused(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
