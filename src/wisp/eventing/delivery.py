"""Delivering a CloudEvent to a sink the Knative way: timeout, retries with backoff, dead-letter sink.

`DeliverySpec` is Knative's `delivery` block parsed once; `Deliverer` owns one pooled aiohttp session and runs
any number of deliveries concurrently. Waiting between attempts goes through the injected `sleep`, so the
retry schedule is tested on a fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from wisp.api.durations import parse_iso8601_duration
from wisp.api.errors import FieldError, ManifestError
from wisp.eventing.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    CloudEventError,
    EventFormat,
    encode,
    make_event,
    parse_event,
)
from wisp.eventing.http_post import HttpPoster
from wisp.http_client.pool import UpstreamError, UpstreamTimeout
from wisp.types import Clock

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "KAFKA_SOURCE_DEFAULT_DELIVERY",
    "BackoffPolicy",
    "Deliverer",
    "DeliveryResult",
    "DeliverySpec",
    "Destination",
    "Outcome",
    "is_retryable_status",
    "kafka_source_delivery",
]

log = logging.getLogger(__name__)

# "fixed" is not a Knative policy: it is what the seed's `k8s.aliyun.com/retry-interval` annotation means.
BackoffPolicy = Literal["linear", "exponential", "fixed"]
Outcome = Literal["delivered", "dead-lettered", "dropped"]
Sleep = Callable[[float], Awaitable[None]]

# Knative's own knob when a subscriber never answers and `timeout` is unset; a hung sink must not pin a slot.
DEFAULT_ATTEMPT_TIMEOUT = 300.0
ERROR_DATA_LIMIT = 1024
_RETRYABLE_4XX = frozenset({404, 408, 409, 429})
# Knative applies Retry-After only to these (delivery-retryafter feature).
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def is_retryable_status(status: int) -> bool:
    """Knative's retry rule: 5xx, 404, 408, 409 and 429 are retried; any other 4xx is final."""
    return status >= 500 or status in _RETRYABLE_4XX


@dataclass(frozen=True)
class Destination:
    """Where to send: a URL, plus the Host header to present (wisp reaches Services via its ingress)."""

    url: str
    host: str | None = None

    @property
    def reported_url(self) -> str:
        """The address as its owner knows it: the virtual host rather than the ingress it is reached through."""
        if self.host is None:
            return self.url
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, self.host, parts.path, parts.query, ""))


@dataclass(frozen=True)
class DeliverySpec:
    """Knative's DeliverySpec, durations in seconds. `retry` counts retries, not attempts."""

    retry: int = 0
    backoff_policy: BackoffPolicy = "exponential"
    backoff_delay: float = 0.0
    timeout: float | None = None
    retry_after_max: float | None = None
    backoff_max: float | None = None
    format: EventFormat = "binary"
    # The raw `deadLetterSink` destination (ref/uri); the caller resolves it to a `Destination`.
    dead_letter_sink: Mapping[str, Any] | None = field(default=None, compare=False)

    def backoff(self, retry_number: int) -> float:
        """Wait before retry `retry_number` (1-based): linear delay·k, exponential delay·2^k, fixed delay."""
        if self.backoff_policy == "linear":
            wait = self.backoff_delay * retry_number
        elif self.backoff_policy == "exponential":
            wait = self.backoff_delay * (2**retry_number)
        else:
            wait = self.backoff_delay
        if self.backoff_max is not None:
            wait = min(wait, self.backoff_max)
        return wait

    @classmethod
    def from_knative(
        cls,
        delivery: Mapping[str, Any] | None,
        *,
        path: str = "spec.delivery",
        base: DeliverySpec | None = None,
    ) -> DeliverySpec:
        """Parse a `delivery` dict; fields it leaves out come from `base` (default: no retries)."""
        spec = base if base is not None else cls()
        if not delivery:
            return spec
        errors: list[FieldError] = []
        changes: dict[str, Any] = {}
        if "retry" in delivery and delivery["retry"] is not None:
            retry = delivery["retry"]
            if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
                errors.append(FieldError(f"{path}.retry", "must be a non-negative integer"))
            else:
                changes["retry"] = retry
        policy = delivery.get("backoffPolicy")
        if policy is not None:
            if policy not in ("linear", "exponential"):
                errors.append(FieldError(f"{path}.backoffPolicy", "must be linear or exponential"))
            else:
                changes["backoff_policy"] = policy
        for key, attr in (
            ("backoffDelay", "backoff_delay"),
            ("timeout", "timeout"),
            ("retryAfterMax", "retry_after_max"),
            ("backoffMax", "backoff_max"),
        ):
            text = delivery.get(key)
            if text is None:
                continue
            try:
                seconds = parse_iso8601_duration(str(text))
            except ValueError as exc:
                errors.append(FieldError(f"{path}.{key}", f"invalid ISO-8601 duration {text!r}: {exc}"))
                continue
            if seconds < 0:
                errors.append(FieldError(f"{path}.{key}", "must not be negative"))
                continue
            changes[attr] = seconds
        fmt = delivery.get("format")
        if fmt is not None:
            if fmt in ("json", "structured"):
                changes["format"] = "structured"
            elif fmt == "binary":
                changes["format"] = "binary"
            else:
                errors.append(FieldError(f"{path}.format", "must be json or binary"))
        if "deadLetterSink" in delivery:
            changes["dead_letter_sink"] = delivery["deadLetterSink"]
        if errors:
            raise ManifestError(errors)
        return replace(spec, **changes)


# Knative's KafkaSource default when `spec.delivery` is absent (architecture.md: eventing semantics).
KAFKA_SOURCE_DEFAULT_DELIVERY = DeliverySpec(retry=10, backoff_policy="exponential", backoff_delay=0.3, timeout=600.0)

_ANNOTATION_TIMEOUT = "k8s.aliyun.com/req-timeout"
_ANNOTATION_RETRY_COUNT = "k8s.aliyun.com/retry-count"
_ANNOTATION_RETRY_INTERVAL = "k8s.aliyun.com/retry-interval"


def _annotation_number(annotations: Mapping[str, str], key: str, errors: list[FieldError]) -> float | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        errors.append(FieldError(f"metadata.annotations[{key}]", f"must be a number, got {raw!r}"))
        return None
    if value < 0:
        errors.append(FieldError(f"metadata.annotations[{key}]", "must not be negative"))
        return None
    return value


def kafka_source_delivery(
    delivery: Mapping[str, Any] | None, annotations: Mapping[str, str] | None = None
) -> DeliverySpec:
    """A KafkaSource's effective delivery: Knative's default when `delivery` is absent, then the seed's
    `k8s.aliyun.com/req-timeout|retry-count|retry-interval` annotations (seconds) on top."""
    spec = DeliverySpec.from_knative(delivery, base=KAFKA_SOURCE_DEFAULT_DELIVERY)
    annotations = annotations or {}
    errors: list[FieldError] = []
    timeout = _annotation_number(annotations, _ANNOTATION_TIMEOUT, errors)
    retries = _annotation_number(annotations, _ANNOTATION_RETRY_COUNT, errors)
    interval = _annotation_number(annotations, _ANNOTATION_RETRY_INTERVAL, errors)
    if retries is not None and retries != int(retries):
        errors.append(FieldError(f"metadata.annotations[{_ANNOTATION_RETRY_COUNT}]", "must be an integer"))
    if errors:
        raise ManifestError(errors)
    if timeout is not None:
        spec = replace(spec, timeout=timeout)
    if retries is not None:
        spec = replace(spec, retry=int(retries))
    if interval is not None:
        spec = replace(spec, backoff_policy="fixed", backoff_delay=interval, backoff_max=None)
    return spec


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery settled. `attempts` counts requests to the sink (not the dead-letter sink)."""

    outcome: Outcome
    attempts: int
    status: int | None = None
    reason: str = ""
    reply: CloudEvent | None = None
    waits: tuple[float, ...] = ()

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


@dataclass
class DeliveryCounters:
    """What a dispatcher's deliveries came to, cumulative (status and /metrics)."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0

    def record(self, result: DeliveryResult) -> None:
        self.retried += result.retries
        if result.outcome == "delivered":
            self.delivered += 1
        elif result.outcome == "dead-lettered":
            self.dead_lettered += 1
        else:
            self.dropped += 1


class _Attempt(NamedTuple):  # a tuple: one made per request
    status: int | None  # None: no HTTP answer (connection error, timeout)
    body: bytes
    error: str
    retryable: bool
    retry_after: float | None
    reply: CloudEvent | None


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _reply_event(headers: Mapping[str, str], body: bytes, names_lowered: bool = False) -> CloudEvent | None:
    lowered = headers if names_lowered else {k.lower(): v for k, v in headers.items()}
    media = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if "ce-specversion" not in lowered and media != STRUCTURED_CONTENT_TYPE:
        return None
    if media == BATCH_CONTENT_TYPE:
        return None
    try:
        return parse_event(lowered, body, names_lowered=True)
    except CloudEventError as exc:
        log.warning("ignoring an invalid reply event: %s", exc)
        return None


class LocalTransport(Protocol):
    """Delivers to a virtual host in-process (wisp's ingress), skipping a loopback HTTP hop."""

    async def post(self, url: str, host: str, headers: Mapping[str, str], body: bytes) -> _LocalReply: ...


class _LocalReply(Protocol):
    status: int
    headers: dict[str, str]
    body: bytes


class Deliverer:
    """Sends CloudEvents with Knative's delivery semantics over one pooled HTTP client.

    `start()` opens the client, `stop()` closes it; `deliver()` may run concurrently any number of times.
    Destinations with a virtual host go through `local` when given (the daemon's ingress, in-process).
    """

    def __init__(
        self,
        *,
        sleep: Sleep = asyncio.sleep,
        now: Clock = time.time,
        max_connections: int = 1000,
        user_agent: str = "wisp-eventing",
        local: LocalTransport | None = None,
    ) -> None:
        self.local = local
        self._sleep = sleep
        self._now = now
        self._max_connections = max_connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._http = HttpPoster()

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self._user_agent},
            auto_decompress=True,
        )

    async def stop(self) -> None:
        self._http.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Deliverer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Deliverer.start() was not called")
        return self._session

    async def deliver(
        self,
        event: CloudEvent,
        dest: Destination,
        spec: DeliverySpec,
        dead_letter: Destination | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> DeliveryResult:
        """Deliver `event` to `dest`, retrying per `spec`; on failure hand it to `dead_letter` if given.

        Never raises for a sink's behaviour: the result says delivered / dead-lettered / dropped.
        """
        waits: list[float] = []
        attempts = 0
        while True:
            attempts += 1
            attempt = await self._attempt(event, dest, spec, headers)
            if attempt.status is not None and 200 <= attempt.status < 300:
                return DeliveryResult("delivered", attempts, attempt.status, reply=attempt.reply, waits=tuple(waits))
            if not attempt.retryable or attempts > spec.retry:
                break
            wait = spec.backoff(attempts)
            if (
                spec.retry_after_max is not None
                and attempt.retry_after is not None
                and attempt.status in _RETRY_AFTER_STATUSES
            ):
                wait = max(wait, min(attempt.retry_after, spec.retry_after_max))
            waits.append(wait)
            await self._sleep(wait)
        reason = attempt.error
        if dead_letter is None:
            log.warning("dropping event %s after %d attempt(s) to %s: %s", event.get("id"), attempts, dest.url, reason)
            return DeliveryResult("dropped", attempts, attempt.status, reason=reason, waits=tuple(waits))
        dead = self._dead_letter_event(event, dest, attempt)
        # The dead-letter sink gets the same retry budget; its failure is the end of the line.
        dl_result = await self.deliver(dead, dead_letter, replace(spec, dead_letter_sink=None), None, headers=headers)
        if dl_result.outcome == "delivered":
            return DeliveryResult("dead-lettered", attempts, attempt.status, reason=reason, waits=tuple(waits))
        log.warning(
            "dropping event %s: dead-letter sink %s failed too: %s",
            event.get("id"),
            dead_letter.url,
            dl_result.reason,
        )
        return DeliveryResult(
            "dropped",
            attempts,
            attempt.status,
            reason=f"{reason}; dead-letter sink: {dl_result.reason}",
            waits=tuple(waits),
        )

    @staticmethod
    def _dead_letter_event(event: CloudEvent, dest: Destination, attempt: _Attempt) -> CloudEvent:
        attributes = dict(event.get_attributes())
        attributes["knativeerrordest"] = dest.reported_url
        if attempt.status is not None:
            attributes["knativeerrorcode"] = str(attempt.status)
        if attempt.body:
            attributes["knativeerrordata"] = base64.b64encode(attempt.body[:ERROR_DATA_LIMIT]).decode()
        return make_event(attributes, event.get_data())

    def _request_headers(
        self, event: CloudEvent, dest: Destination, spec: DeliverySpec, extra: Mapping[str, str] | None
    ) -> tuple[dict[str, str], bytes]:
        ce_headers, body = encode(event, spec.format)
        headers = {**extra, **ce_headers} if extra else ce_headers  # encode's dict is a new one: ours to add to
        headers.setdefault("Prefer", "reply")
        # W3C trace context travels as plain headers too, so the sink's HTTP stack continues the trace; only as
        # printable ASCII: an event's extension may hold anything (a CR LF would start a header of the sender's).
        for name in ("traceparent", "tracestate"):
            value = event.get(name)
            if value and isinstance(value, str) and value.isascii() and value.isprintable():
                headers[name] = value
        if dest.host:
            headers["Host"] = dest.host
        return headers, body

    async def _attempt(
        self, event: CloudEvent, dest: Destination, spec: DeliverySpec, extra: Mapping[str, str] | None
    ) -> _Attempt:
        headers, body = self._request_headers(event, dest, spec, extra)
        seconds = spec.timeout if spec.timeout else DEFAULT_ATTEMPT_TIMEOUT
        if self.local is not None and dest.host is not None:
            return await self._attempt_local(self.local, dest, headers, body, seconds)
        if self._http.handles(dest.url):
            return await self._attempt_http(dest, headers, body, seconds)
        timeout = aiohttp.ClientTimeout(total=seconds)
        try:
            # Without a datacontenttype, aiohttp must not invent `application/octet-stream` for the body.
            skip = () if any(k.lower() == "content-type" for k in headers) else ("Content-Type",)
            async with self._client().post(
                dest.url, data=body, headers=headers, timeout=timeout, skip_auto_headers=skip
            ) as resp:
                reply_body = await resp.read()
                return self._answered(resp.status, resp.headers, reply_body)
        except aiohttp.InvalidURL as exc:
            return _Attempt(None, b"", f"invalid sink URL {exc}", False, None, None)
        except TimeoutError:
            return _Attempt(None, b"", f"timed out after {timeout.total}s", True, None, None)
        except (aiohttp.ClientError, OSError) as exc:
            return _Attempt(None, b"", f"connection error: {exc!r}", True, None, None)

    async def _attempt_http(self, dest: Destination, headers: Mapping[str, str], body: bytes,
                            timeout: float | None) -> _Attempt:
        try:
            reply = await self._http.post(dest.url, headers, body, timeout)
        except UpstreamTimeout:
            return _Attempt(None, b"", f"timed out after {timeout}s", True, None, None)
        except UpstreamError as exc:
            return _Attempt(None, b"", f"connection error: {exc}", True, None, None)
        except ValueError as exc:  # a malformed URL (bad port, ...)
            return _Attempt(None, b"", f"invalid sink URL {dest.url}: {exc}", False, None, None)
        return self._answered(reply.status, reply.headers, reply.body, names_lowered=True)

    async def _attempt_local(
        self, local: LocalTransport, dest: Destination, headers: Mapping[str, str], body: bytes,
        timeout: float | None,
    ) -> _Attempt:
        assert dest.host is not None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: no task per delivery
                reply = await local.post(dest.url, dest.host, headers, body)
        except TimeoutError:
            return _Attempt(None, b"", f"timed out after {timeout}s", True, None, None)
        except (ConnectionError, OSError) as exc:
            return _Attempt(None, b"", f"connection error: {exc!r}", True, None, None)
        except Exception as exc:  # a fault in the local path must not lose the event: retry it
            log.exception("in-process delivery to %s failed", dest.host)
            return _Attempt(None, b"", f"internal error: {exc!r}", True, None, None)
        return self._answered(reply.status, reply.headers, reply.body)

    def _answered(self, status: int, headers: Mapping[str, str], reply_body: bytes, *,
                  names_lowered: bool = False) -> _Attempt:
        if 200 <= status < 300:
            return _Attempt(status, reply_body, "", False, None, _reply_event(headers, reply_body, names_lowered))
        retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        return _Attempt(status, reply_body, f"sink answered {status}", is_retryable_status(status),
                        _retry_after_seconds(retry_after, self._now()), None)
