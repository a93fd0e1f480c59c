"""Brokers and the broker ingress (`POST /{namespace}/{broker}` at broker-ingress.knative-eventing.localhost).

A `Broker` is anything that can durably take events: the default class appends to the `BrokerLog`, the `Kafka`
class produces to topic `knative-broker-{namespace}-{name}` with acks=all. The ingress answers 202 only after
`publish` returned, i.e. after the events are durable. Which brokers exist is told by a `BrokerRegistry` the
daemon passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wisp.api.names import BROKER_CLASS_ANNOTATION
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.cloudevents import (
    CloudEvent,
    CloudEventError,
    encode,
    make_event,
    parse_request,
    validate_attribute_name,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TTL",
    "KAFKA_BROKER_CLASS",
    "TTL_EXTENSION",
    "Broker",
    "BrokerRegistry",
    "Brokers",
    "KafkaBroker",
    "LogBroker",
    "broker_class",
    "broker_ingress_app",
    "event_from_record",
    "event_to_record",
    "get_ttl",
    "is_kafka_broker",
    "kafka_broker_topic",
    "with_ttl",
]

log = logging.getLogger(__name__)

TTL_EXTENSION = "knativebrokerttl"
DEFAULT_TTL = 255
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
KAFKA_BROKER_CLASS = "Kafka"


def get_ttl(event: CloudEvent) -> int | None:
    """The event's `knativebrokerttl`, None when absent. Raises ValueError when it is not an integer."""
    raw = event.get(TTL_EXTENSION)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ValueError(f"{TTL_EXTENSION} must be an integer, got {raw!r}")
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise ValueError(f"{TTL_EXTENSION} must be an integer, got {raw!r}") from exc


def with_ttl(event: CloudEvent, ttl: int | None) -> CloudEvent:
    """A copy of `event` with `knativebrokerttl` set to `ttl` (removed when None)."""
    attributes = {k: v for k, v in event.get_attributes().items() if k != TTL_EXTENSION}
    if ttl is not None:
        attributes[TTL_EXTENSION] = str(ttl)
    return make_event(attributes, event.get_data())


class Broker(Protocol):
    """A place events go into. `publish` returns once every event is durable (or raises)."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    async def publish(self, events: Sequence[CloudEvent]) -> None: ...


class BrokerRegistry(Protocol):
    """Which brokers exist, as the daemon's reconciler knows them."""

    def get(self, namespace: str, name: str) -> Broker | None: ...


class Brokers:
    """A plain in-memory `BrokerRegistry` the reconciler fills and empties."""

    def __init__(self) -> None:
        self._brokers: dict[tuple[str, str], Broker] = {}

    def put(self, broker: Broker) -> None:
        self._brokers[(broker.namespace, broker.name)] = broker

    def remove(self, namespace: str, name: str) -> Broker | None:
        return self._brokers.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> Broker | None:
        return self._brokers.get((namespace, name))


class LogBroker:
    """The default broker class: events go to the SQLite `BrokerLog`."""

    def __init__(self, broker_log: BrokerLog, namespace: str, name: str) -> None:
        self._log = broker_log
        self._namespace = namespace
        self._name = name

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def name(self) -> str:
        return self._name

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        await self._log.append(self._namespace, self._name, events)


def kafka_broker_topic(namespace: str, name: str) -> str:
    """Knative's Kafka broker topic name."""
    return f"knative-broker-{namespace}-{name}"


def event_to_record(event: CloudEvent) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the Kafka binding's binary mode: `ce_` headers, data as the value.

    The `partitionkey` extension (CloudEvents partitioning) becomes the record key, as Knative does.
    """
    http_headers, body = encode(event, "binary")
    headers: list[tuple[str, bytes]] = []
    for name, value in http_headers.items():
        if name.startswith("ce-"):
            headers.append((f"ce_{name[3:]}", value.encode()))
        elif name == "content-type":
            headers.append(("content-type", value.encode()))
    key = event.get("partitionkey")
    return (str(key).encode() if key is not None else None), body, headers


def event_from_record(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> CloudEvent:
    """The inverse of `event_to_record` (binary mode); a structured-mode record is accepted too."""
    http_headers: dict[str, str] = {}
    for name, raw in headers:
        text = raw.decode("utf-8", "replace")
        low = name.lower()
        if low.startswith("ce_"):
            validate_attribute_name(low[3:])
            http_headers[f"ce-{low[3:]}"] = text
        elif low == "content-type":
            http_headers["content-type"] = text
    return parse_request(http_headers, value or b"")[0]


class _Producer(Protocol):
    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


class KafkaBroker:
    """The `Kafka` broker class: events are produced to the broker's topic.

    `producer` is a started `aiokafka.AIOKafkaProducer` created with `acks="all"`, shared by every Kafka
    broker; the topic must exist (`wisp.eventing.local_kafka.ensure_topics`).
    """

    def __init__(self, producer: _Producer, namespace: str, name: str) -> None:
        self._producer = producer
        self._namespace = namespace
        self._name = name
        self.topic = kafka_broker_topic(namespace, name)

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def name(self) -> str:
        return self._name

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        for event in events:
            key, value, headers = event_to_record(event)
            await self._producer.send_and_wait(self.topic, value=value, key=key, headers=headers)


# -- ingress ---------------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _prepare(events: Sequence[CloudEvent]) -> list[CloudEvent]:
    """Default the TTL of new events; reject a malformed or exhausted one (a loop that came back in)."""
    out: list[CloudEvent] = []
    for event in events:
        ttl = get_ttl(event)
        if ttl is None:
            out.append(with_ttl(event, DEFAULT_TTL))
            continue
        if ttl <= 0:
            raise ValueError(f"{TTL_EXTENSION} is {ttl}: the event exceeded its broker hop budget")
        out.append(event)
    return out


def broker_ingress_app(
    registry: BrokerRegistry, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> Starlette:
    """The broker ingress ASGI app; the daemon mounts it for broker-ingress.knative-eventing.localhost."""

    async def ingest(request: Request) -> Response:
        namespace = request.path_params["namespace"]
        name = request.path_params["broker"]
        broker = registry.get(namespace, name)
        if broker is None:
            return PlainTextResponse(f"broker {namespace}/{name} not found", status_code=404)
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return PlainTextResponse(f"request body exceeds {max_body_bytes} bytes", status_code=413)
        try:
            events = _prepare(parse_request(request.headers, body))
        except (CloudEventError, ValueError) as exc:
            return PlainTextResponse(str(exc), status_code=400)
        if not events:
            return PlainTextResponse("no CloudEvent in the request", status_code=400)
        try:
            await broker.publish(events)
        except Exception:
            log.exception("broker %s/%s could not store %d event(s)", namespace, name, len(events))
            return PlainTextResponse("the broker could not store the event", status_code=500)
        return Response(status_code=202)

    return Starlette(routes=[Route("/{namespace}/{broker}", ingest, methods=["POST"])])


def broker_class(broker: Mapping[str, Any]) -> str:
    """`eventing.knative.dev/broker.class` of a Broker resource ("MTChannelBasedBroker" when unset)."""
    annotations = (broker.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(BROKER_CLASS_ANNOTATION) or "MTChannelBasedBroker")


def is_kafka_broker(broker: Mapping[str, Any]) -> bool:
    return broker_class(broker) == KAFKA_BROKER_CLASS

