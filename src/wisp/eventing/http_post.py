"""POSTs to plain-HTTP sinks over wisp's own pooled HTTP/1.1 client (the one the ingress uses).

A dispatcher sends thousands of small requests a second; a general-purpose client spends more CPU per
request than the event handling around it. HTTPS sinks still go through aiohttp.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from wisp.http_client.pool import HOP_BY_HOP, UpstreamPool

_HOP_BY_HOP = frozenset(name.decode("latin-1") for name in HOP_BY_HOP)
# Parsed sink URLs kept (a dispatcher posts to few, over and over); past this many the cache starts again.
_MAX_TARGETS = 1024


@dataclass(frozen=True)
class PostReply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Target:
    """A sink URL as the request needs it, parsed once."""

    pool: tuple[str, int]
    request_line: str
    host_line: str


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target((parts.hostname or "127.0.0.1", parts.port or 80), f"POST {path} HTTP/1.1\r\n",
                   f"host: {parts.netloc}\r\n")


class HttpPoster:
    def __init__(self) -> None:
        self._pools: dict[tuple[str, int], UpstreamPool] = {}
        self._targets: dict[str, _Target] = {}

    @staticmethod
    def handles(url: str) -> bool:
        return url.startswith("http://")

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float | None) -> PostReply:
        """Raises UpstreamError (connection), UpstreamTimeout (no answer within `timeout`), ValueError (a malformed
        URL, a header that is not Latin-1 or holds a line break)."""
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = target
        pool = self._pools.get(target.pool)
        if pool is None:
            # As many idle connections as a dispatcher keeps requests in flight: no reconnect churn.
            pool = self._pools[target.pool] = UpstreamPool(*target.pool, max_idle=1024)
        # The request head in one string, encoded once: names lowercased, hop-by-hop headers dropped (the length
        # is ours), the URL's host unless the caller names one.
        lines = [target.request_line]
        host = False
        for key, value in headers.items():
            name = key.lower()
            if name in _HOP_BY_HOP:
                continue
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r}: a line break cannot go in a header value")
            host = host or name == "host"
            lines.append(f"{name}: {value}\r\n")
        if not host:
            lines.append(target.host_line)
        lines.append(f"content-length: {len(body)}\r\n\r\n")
        deadline = None if timeout is None else time.monotonic() + timeout
        response = await pool.request("".join(lines).encode("latin-1") + body, timeout)
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
