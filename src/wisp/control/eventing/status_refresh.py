"""Progress-driven status refresh for KafkaSources: delivery counters and lag change with every record, so a
source's status is rewritten at most once per interval while it has progress to report, and not at all while
it has none (an idle source costs no timer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# A KafkaSource's status (delivery counters, lag) is rewritten at most this often while it makes progress.
STATUS_REFRESH_INTERVAL = 2.0


class StatusRefresh:
    def __init__(self, refresh: Callable[[str, str], None], interval: float = STATUS_REFRESH_INTERVAL) -> None:
        """`refresh(namespace, name)` asks for the source's reconcile (which writes its status)."""
        self._refresh = refresh
        self._interval = interval
        self._due: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def progress(self, namespace: str, name: str) -> None:
        """Records were fetched or settled: refresh once, `interval` from now (the progress until then is in
        that one write)."""
        key = (namespace, name)
        if key in self._due:
            return

        def fire() -> None:
            self._due.pop(key, None)
            self._refresh(namespace, name)

        self._due[key] = asyncio.get_running_loop().call_later(self._interval, fire)

    def pending(self) -> int:
        return len(self._due)

    def stop(self) -> None:
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
