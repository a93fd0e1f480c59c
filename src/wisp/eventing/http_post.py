"""POSTs to plain-HTTP sinks over wisp's own pooled HTTP/1.1 client (the one the ingress uses).

A dispatcher sends thousands of small requests a second; a general-purpose client spends more CPU per
request than the event handling around it. HTTPS sinks still go through aiohttp.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from wisp.http_client.pool import UpstreamPool, build_request_head


@dataclass(frozen=True)
class PostReply:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpPoster:
    def __init__(self) -> None:
        self._pools: dict[tuple[str, int], UpstreamPool] = {}

    @staticmethod
    def handles(url: str) -> bool:
        return url.startswith("http://")

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float | None) -> PostReply:
        """Raises UpstreamError (connection), UpstreamTimeout (no answer within `timeout`)."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        pool = self._pools.get((host, port))
        if pool is None:
            # As many idle connections as a dispatcher keeps requests in flight: no reconnect churn.
            pool = self._pools[(host, port)] = UpstreamPool(host, port, max_idle=1024)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        wire = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if not any(name == b"host" for name, _ in wire):
            wire.append((b"host", parts.netloc.encode("latin-1")))
        deadline = None if timeout is None else time.monotonic() + timeout
        response = await pool.request(build_request_head("POST", target.encode("latin-1"), wire, len(body))
                                      + body, timeout)
        if response.complete:
            data = response.take_complete()
        else:
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            data = b"".join([chunk async for chunk in response.body(remaining)])
        return PostReply(response.status,
                         {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in response.headers}, data)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
