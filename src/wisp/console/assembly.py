"""The console as the daemon builds it: the live hub, its routes, the sign-in gate, and the adapter that reads
the data plane into the console's own reading types."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.routing import Route
from starlette.types import ASGIApp

from wisp.console.auth import ConsoleGate
from wisp.console.live import LiveHub
from wisp.console.routes import console_routes
from wisp.console.sampler import RequestStats, RevisionKey
from wisp.console.sources import ConsoleSources, DecisionReading, RevisionReading
from wisp.console.static_files import StaticFiles
from wisp.serving.dataplane import DataPlane


class Console:
    def __init__(self, sources: ConsoleSources) -> None:
        self.hub = LiveHub(sources)
        self.static = StaticFiles()

    @property
    def requests(self) -> RequestStats:
        """The ingress's request observer for the charts (requests/s, p50/p99)."""
        return self.hub.stats

    def routes(self) -> list[Route]:
        return console_routes(self.hub, self.static)

    def gate(self, api: ASGIApp, token: str | None) -> ConsoleGate:
        return ConsoleGate(api, token, self.static, self.hub.sources.clock)

    def revision_changed(self, key: RevisionKey) -> None:
        self.hub.revision_changed(key)

    async def start(self) -> None:
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()


def dataplane_readings(dataplane: DataPlane) -> Callable[[], Iterable[RevisionReading]]:
    def readings() -> list[RevisionReading]:
        out = []
        for runner in dataplane.runners():
            decision = dataplane.last_decision(runner.key)
            out.append(RevisionReading(
                runner.key[0], runner.key[1], runner.runtime.spec.env.get("K_SERVICE", ""), runner.desired,
                runner.ready_count, runner.throttler.in_flight, runner.throttler.queued,
                None if decision is None else DecisionReading(
                    decision.desired, decision.ready_instances, decision.panicking, decision.stable_value,
                    decision.panic_value, decision.target_value, decision.stable_desired, decision.panic_desired,
                    decision.excess_burst_capacity, decision.reason)))
        return out
    return readings


class TeeObserver:
    """Tells every observer about each proxied request (the ingress takes one)."""

    def __init__(self, *observers: object) -> None:
        self._calls = [getattr(o, "request_done") for o in observers]  # noqa: B009

    def request_done(self, key: tuple[str, str], status: int, seconds: float) -> None:
        for call in self._calls:
            call(key, status, seconds)
