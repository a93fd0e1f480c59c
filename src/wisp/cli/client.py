"""A small synchronous client for wisp's control API (Kubernetes-shaped JSON over HTTP)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from wisp.api.kinds import Kind
from wisp.types import Resource

DEFAULT_API = "http://127.0.0.1:8001"
BROKER_INGRESS_HOST = "broker-ingress.knative-eventing.localhost"


class DaemonUnreachable(Exception):
    """Nothing answers at the control API's address."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"cannot reach the wisp daemon at {url}: is `wisp up` running?")


class ApiError(Exception):
    """The daemon answered with a Kubernetes `Status` (or something else that is not 2xx)."""

    def __init__(self, code: int, status: Resource) -> None:
        self.code = code
        self.status = status
        super().__init__(self.message)

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("kind") != "Status":
            text = response.text.strip() or response.reason_phrase
            body = {"kind": "Status", "status": "Failure", "message": text, "code": response.status_code}
        return cls(response.status_code, body)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or _reason_for(self.code))

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def causes(self) -> list[tuple[str, str]]:
        """(field, message) for each cause the Status names."""
        details = self.status.get("details")
        causes = (details.get("causes") or []) if isinstance(details, dict) else []
        return [
            (str(c.get("field") or ""), str(c.get("message") or "")) for c in causes if isinstance(c, dict)
        ]


def _reason_for(code: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        422: "Invalid",
        500: "InternalError",
        503: "ServiceUnavailable",
    }.get(code, "Unknown")


class ApiClient:
    """One method per control API call; raises ApiError for a failure Status, DaemonUnreachable when down."""

    def __init__(self, base_url: str = DEFAULT_API, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.base_url) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Resource:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return {}
        body = response.json()
        if not isinstance(body, dict):
            raise ApiError(response.status_code, {"message": f"unexpected answer from {path}: {body!r}"})
        return body

    # -- resources -----------------------------------------------------------------------------------------

    def list_objects(self, kind: Kind, namespace: str | None) -> list[Resource]:
        """Every object of `kind` in `namespace` (all namespaces when None)."""
        body = self._json("GET", kind.collection_path(namespace))
        return list(body.get("items") or [])

    def get(self, kind: Kind, name: str, namespace: str) -> Resource:
        return self._json("GET", f"{kind.collection_path(namespace)}/{name}")

    def delete(self, kind: Kind, name: str, namespace: str) -> Resource:
        return self._json("DELETE", f"{kind.collection_path(namespace)}/{name}")

    def apply(self, resources: list[Resource]) -> list[Resource]:
        """Apply all documents at once; each result names kind, namespace, name and action."""
        return list(self._json("POST", "/apply", json={"items": resources}).get("items") or [])

    def delete_many(self, resources: list[Resource]) -> list[Resource]:
        return list(self._json("POST", "/delete", json={"items": resources}).get("items") or [])

    def info(self) -> Resource:
        return self._json("GET", "/info")

    def logs(self, service: str, namespace: str, follow: bool, tail: int | None) -> Iterator[str]:
        """Yield the service's log text as it arrives (each line prefixed with its instance name)."""
        params: dict[str, str] = {"follow": "true" if follow else "false"}
        if tail is not None:
            params["tailLines"] = str(tail)
        path = f"/api/v1/namespaces/{namespace}/services/{service}/logs"
        # A followed stream stays open as long as the user watches: no read timeout.
        timeout = httpx.Timeout(self._http.timeout.connect, read=None) if follow else self._http.timeout
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError.from_response(response)
                yield from response.iter_text()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DaemonUnreachable(self.base_url) from exc


def send_event(
    ingress: str,
    namespace: str,
    broker: str,
    *,
    event_type: str,
    source: str,
    data: str | None = None,
    event_id: str | None = None,
    timeout: float = 30.0,
) -> httpx.Response:
    """POST a binary-mode CloudEvent to a broker's ingress; `data` is sent as JSON when it parses as JSON."""
    headers = {
        "Host": BROKER_INGRESS_HOST,
        "ce-specversion": "1.0",
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-type": event_type,
        "ce-source": source,
    }
    body = b""
    if data is not None:
        headers["Content-Type"] = "application/json" if _is_json(data) else "text/plain"
        body = data.encode()
    url = f"{ingress.rstrip('/')}/{namespace}/{broker}"
    try:
        return httpx.post(url, content=body, headers=headers, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise DaemonUnreachable(ingress) from exc


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
