"""An ASGI app under uvicorn on a port bound before it starts, so tests need no readiness polling."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from wisp.observability.otlp_receiver import otlp_routes
from wisp.observability.spans import SpanStore
from wisp.observability.trace_api import trace_routes


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Yields the base URL (`http://127.0.0.1:PORT`) while uvicorn serves `app`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()


def collector_app(store: SpanStore) -> Starlette:
    """What the control API mounts: the OTLP receiver and the trace read API."""
    return Starlette(routes=[*otlp_routes(store), *trace_routes(store)])
