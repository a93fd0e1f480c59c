"""JobSink's address: `POST /{namespace}/{name}` at job-sink.knative-eventing.svc.cluster.local starts one run of
the sink's job per event, as Knative's job-sink does.

The job is named after the event (`{sink}-{md5(source + id)}`), so a redelivered event does not start a second
run: it gets the same 202 and `Location`. `GET` on that Location answers 202 while the job runs, 200 once it
completed and 400 when it failed. What runs a job is the `JobLauncher` the daemon gives.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import MutableMapping
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote

from wisp.eventing.channel import DEFAULT_MAX_BODY_BYTES
from wisp.eventing.cloudevents import event_to_json
from wisp.eventing.event_intake import ASGIReceive, ASGISend, received_events, respond_text

JOB_SINK_HOST = "job-sink.knative-eventing.svc.cluster.local"
JobState = Literal["running", "complete", "failed"]
Submitted = Literal["started", "exists", "full"]
_INVALID = re.compile(r"[^a-z0-9-]")


def job_name(sink: str, source: str, event_id: str) -> str:
    """Knative's job name for an event: the sink's name, a dash, the md5 of source + id (63 characters at most,
    as kmeta.ChildName keeps them)."""
    digest = hashlib.md5((source + event_id).encode(), usedforsecurity=False).hexdigest()
    name = f"{sink}-{digest}"
    if len(name) > 63:
        name = f"{sink[:63 - len(digest) - 1]}-{digest}"
    return _INVALID.sub("", name.lower()).strip("-")


def location(namespace: str, name: str, source: str, event_id: str) -> str:
    return (f"/namespaces/{quote(namespace, safe='')}/name/{quote(name, safe='')}/sources/{quote(source, safe='')}"
            f"/ids/{quote(event_id, safe='')}")


class JobLauncher(Protocol):
    """One JobSink's runs."""

    def submit(self, job: str, event_json: bytes) -> Submitted: ...

    def state(self, job: str) -> JobState | None: ...


class JobSinks:
    """The JobSinks that exist, and their address (one virtual host, routed by path)."""

    def __init__(self, hosts: MutableMapping[str, Any], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._sinks: dict[tuple[str, str], JobLauncher] = {}
        self._max_body = max_body_bytes
        hosts[JOB_SINK_HOST] = self

    def put(self, namespace: str, name: str, launcher: JobLauncher) -> None:
        self._sinks[(namespace, name)] = launcher

    def remove(self, namespace: str, name: str) -> None:
        self._sinks.pop((namespace, name), None)

    async def __call__(self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        parts = [unquote(p) for p in scope.get("raw_path", scope["path"].encode()).decode("latin-1")
                 .rstrip("/").split("/")[1:]]
        if scope["method"] == "GET":
            await self._get(parts, send)
        elif scope["method"] == "POST":
            await self._post(parts, scope, receive, send)
        else:
            await respond_text(send, 400, "a JobSink takes CloudEvents by POST")

    async def _get(self, parts: list[str], send: ASGISend) -> None:
        # /namespaces/{ns}/name/{name}/sources/{source}/ids/{id}
        if len(parts) != 8 or parts[0::2] != ["namespaces", "name", "sources", "ids"]:
            await respond_text(send, 400, "expected /namespaces/{ns}/name/{name}/sources/{source}/ids/{id}")
            return
        namespace, name, source, event_id = parts[1::2]
        launcher = self._sinks.get((namespace, name))
        if launcher is None:
            await respond_text(send, 400, f"JobSink {namespace}/{name} not found")
            return
        state = launcher.state(job_name(name, source, event_id))
        if state is None:
            await respond_text(send, 404, "no job for this event")
        elif state == "complete":
            await respond_text(send, 200, "", [(b"reason", b"Complete")])
        elif state == "failed":
            await respond_text(send, 400, "", [(b"reason", b"Failed")])
        else:
            where = location(namespace, name, source, event_id).encode()
            await respond_text(send, 202, "", [(b"location", where)])

    async def _post(self, parts: list[str], scope: MutableMapping[str, Any], receive: ASGIReceive,
                    send: ASGISend) -> None:
        if len(parts) != 2:
            await respond_text(send, 400, "expected POST /{namespace}/{jobsink}")
            return
        namespace, name = parts
        launcher = self._sinks.get((namespace, name))
        if launcher is None:
            await respond_text(send, 400, f"JobSink {namespace}/{name} not found")
            return
        events = await received_events(scope, receive, send, self._max_body)
        if events is None:
            return
        if len(events) != 1:
            await respond_text(send, 400, "a JobSink takes one CloudEvent per request")
            return
        event = events[0]
        source, event_id = str(event["source"]), str(event["id"])
        outcome = launcher.submit(job_name(name, source, event_id), event_to_json(event))
        if outcome == "full":
            await respond_text(send, 503, "too many jobs waiting to run", [(b"retry-after", b"1")])
            return
        await respond_text(send, 202, "", [(b"location", location(namespace, name, source, event_id).encode())])
