"""PingSource: a cron schedule that emits `dev.knative.sources.ping` events.

`next_fire` is a pure function of the schedule, its time zone and a point in time; `PingRunner` only sleeps
until the next fire through the injected clock and sleep, so tests drive it on a fake clock. As in Knative,
missed fires (the daemon was down) are not caught up: after a restart the next fire is the next one due.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from wisp.api.errors import FieldError, ManifestError
from wisp.eventing.cloudevents import CloudEvent, make_event
from wisp.types import Clock, Resource

__all__ = [
    "PING_EVENT_TYPE",
    "PingRunner",
    "next_fire",
    "parse_schedule",
    "ping_event",
    "ping_source_uri",
    "validate_ping_source",
]

log = logging.getLogger(__name__)

PING_EVENT_TYPE = "dev.knative.sources.ping"
Sleep = Callable[[float], Awaitable[None]]
Emit = Callable[[CloudEvent], Awaitable[None]]


def parse_schedule(schedule: str, timezone: str | None = None) -> tuple[str, ZoneInfo]:
    """Split a `CRON_TZ=Zone ` / `TZ=Zone ` prefix off a schedule; returns (cron expression, zone).

    Raises ValueError for an unknown zone, a prefix that contradicts `timezone`, or a bad cron expression.
    """
    expr = schedule.strip()
    zone_name = timezone or None
    for prefix in ("CRON_TZ=", "TZ="):
        if expr.startswith(prefix):
            head, _, rest = expr.partition(" ")
            prefixed = head[len(prefix):]
            if zone_name and zone_name != prefixed:
                raise ValueError(f"schedule time zone {prefixed!r} contradicts timezone {zone_name!r}")
            zone_name, expr = prefixed, rest.strip()
            break
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {zone_name!r}") from exc
    if not expr or not croniter.is_valid(expr):
        raise ValueError(f"invalid cron schedule {expr!r}")
    return expr, zone


def next_fire(schedule: str, tz: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after` (aware; naive means UTC), in the schedule's zone."""
    expr, zone = parse_schedule(schedule, tz)
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    fire: datetime = croniter(expr, after.astimezone(zone)).get_next(datetime)
    return fire


def ping_source_uri(namespace: str, name: str) -> str:
    return f"/apis/v1/namespaces/{namespace}/pingsources/{name}"


def _payload(spec: Mapping[str, Any]) -> bytes | None:
    if spec.get("dataBase64"):
        return base64.b64decode(str(spec["dataBase64"]), validate=True)
    data = spec.get("data")
    return None if data is None else str(data).encode()


def ping_event(
    source: Resource, fire_time: datetime, *, new_id: Callable[[], str] = lambda: str(uuid.uuid4())
) -> CloudEvent:
    """The CloudEvent a PingSource emits at `fire_time` (data kept as the exact bytes of data/dataBase64)."""
    meta = source.get("metadata") or {}
    spec = source.get("spec") or {}
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": new_id(),
        "source": ping_source_uri(str(meta.get("namespace") or "default"), str(meta["name"])),
        "type": PING_EVENT_TYPE,
        "time": fire_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    payload = _payload(spec)
    if payload is not None:
        attributes["datacontenttype"] = str(spec.get("contentType") or "text/plain")
    overrides = ((spec.get("ceOverrides") or {}).get("extensions")) or {}
    for name, value in overrides.items():
        attributes[str(name)] = str(value)
    return make_event(attributes, payload)


def validate_ping_source(spec: Mapping[str, Any], path: str = "spec") -> list[FieldError]:
    """Field errors of a PingSource spec (schedule, timezone, data vs dataBase64)."""
    errors: list[FieldError] = []
    schedule = spec.get("schedule")
    if not isinstance(schedule, str) or not schedule.strip():
        errors.append(FieldError(f"{path}.schedule", "is required"))
    else:
        try:
            parse_schedule(schedule, spec.get("timezone"))
        except ValueError as exc:
            field = "timezone" if "zone" in str(exc) and spec.get("timezone") else "schedule"
            errors.append(FieldError(f"{path}.{field}", str(exc)))
    if spec.get("data") is not None and spec.get("dataBase64") is not None:
        errors.append(FieldError(path, "expected exactly one, got both: data, dataBase64"))
    elif spec.get("dataBase64") is not None:
        try:
            base64.b64decode(str(spec["dataBase64"]), validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(f"{path}.dataBase64", "is not valid base64"))
    if "sink" not in spec:
        errors.append(FieldError(f"{path}.sink", "is required"))
    return errors


class PingRunner:
    """Fires one PingSource on its schedule. `start()` / `stop()`; each fire calls `emit(event)`.

    `emit` is the daemon's delivery to the resolved sink (a `Deliverer.deliver` with the source's delivery);
    fires run as tasks so a slow sink does not shift the schedule.
    """

    def __init__(
        self,
        source: Resource,
        emit: Emit,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        spec = source.get("spec") or {}
        errors = validate_ping_source({**spec, "sink": spec.get("sink", {})})
        if errors:
            raise ManifestError(errors)
        self._source = source
        self._schedule = str(spec["schedule"])
        self._timezone: str | None = spec.get("timezone")
        self._emit = emit
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._fires: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pingsource")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._fires) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        after = datetime.fromtimestamp(self._clock(), UTC)
        while True:
            fire = next_fire(self._schedule, self._timezone, after)
            while (wait := fire.timestamp() - self._clock()) > 0:
                await self._sleep(wait)
            task = asyncio.create_task(self._fire(fire))
            self._fires.add(task)
            task.add_done_callback(self._fires.discard)
            # Skip fires missed while we were busy or asleep (Knative does not catch up).
            after = max(fire, datetime.fromtimestamp(self._clock(), UTC))

    async def _fire(self, fire: datetime) -> None:
        try:
            await self._emit(ping_event(self._source, fire))
        except Exception:
            meta = self._source.get("metadata") or {}
            log.exception("pingsource %s/%s: emitting the %s event failed",
                          meta.get("namespace"), meta.get("name"), fire.isoformat())
