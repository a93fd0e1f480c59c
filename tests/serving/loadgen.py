"""A closed-loop HTTP load generator run as its own process, so it does not share the daemon's loop.

Usage: python -m tests.serving.loadgen URL HOST CLIENTS SECONDS [PAUSE]; prints {"status": count} as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import aiohttp


async def main(url: str, host: str, clients: int, seconds: float, pause: float) -> Counter[int]:
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one() -> None:
            while time.monotonic() < deadline:
                async with session.get(url, headers={"Host": host}) as reply:
                    await reply.read()
                    statuses[reply.status] += 1
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(one() for _ in range(clients)))
    return statuses


if __name__ == "__main__":
    url, host, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    print(json.dumps(asyncio.run(main(url, host, clients, seconds, pause))))
