"""Stopping an instance the way Knative's runtime contract says: SIGTERM, a drain, then SIGKILL."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable


async def terminate_then_kill(send: Callable[[int], None], exited: asyncio.Future[int], grace: float) -> None:
    """SIGTERM (the instance drains in-flight requests), SIGKILL if it has not exited within `grace` seconds."""
    if not exited.done():
        send(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(exited), grace)
    except TimeoutError:
        if not exited.done():
            send(signal.SIGKILL)
        await exited
