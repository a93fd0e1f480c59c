"""Send: validate the form, then `Concurrency` sender tasks produce the message for `Duration` seconds."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import barrage_tracing
from opentelemetry import trace
from opentelemetry.context import Context

Clock = Callable[[], float]

MAX_TEXT = 200
MAX_CONCURRENCY = 100
MAX_DURATION = 60
MAX_RATE = 1000.0


class Invalid(ValueError):
    """A Send the server refuses; the message is shown to the user as is."""


class Producer(Protocol):
    """The part of aiokafka's AIOKafkaProducer a sender uses."""

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, **kwargs: Any
    ) -> asyncio.Future[Any]: ...


@dataclass(frozen=True)
class SendRequest:
    message: str
    concurrency: int
    duration: int
    rate: float


def _whole_number(value: object, field: str, low: int, high: int, unit: str = "") -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise Invalid(f"{field} must be a whole number from {low} to {high}{unit}")
    return number


def validate(body: object, default_rate: float) -> SendRequest:
    if not isinstance(body, dict):
        raise Invalid("the request must be a JSON object with message, concurrency and duration")
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise Invalid("Message is empty")
    if len(message) > MAX_TEXT:
        raise Invalid(f"Message is longer than {MAX_TEXT} characters ({len(message)})")
    concurrency = _whole_number(body.get("concurrency"), "Concurrency", 1, MAX_CONCURRENCY)
    duration = _whole_number(body.get("duration"), "Duration", 1, MAX_DURATION, " seconds")
    rate = body.get("rate", default_rate)
    if isinstance(rate, str):
        try:
            rate = float(rate)
        except ValueError:
            rate = None
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= MAX_RATE:
        raise Invalid(f"rate must be a number of messages per second per sender, above 0 and at most {MAX_RATE:g}")
    return SendRequest(message, concurrency, duration, float(rate))


class SendRun:
    """One Send: a parent span, `concurrency` sender tasks, and counts of acknowledged records.

    The tasks share one producer: aiokafka batches all of them into few requests (linger), which is
    what lets two cores send thousands of records a second. Each task paces itself to `rate`.
    """

    def __init__(
        self,
        request: SendRequest,
        producer: Producer,
        topic: str,
        tracer: trace.Tracer,
        *,
        parent_span: str,
        sender_span: str,
        clock: Clock,
        context: Context | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.request = request
        self.sent = 0
        self.failed = 0
        self.last_error = ""
        self.finished = asyncio.Event()
        self._producer = producer
        self._topic = topic
        self._tracer = tracer
        self._parent_span_name = parent_span
        self._sender_span_name = sender_span
        self._clock = clock
        self._context = context
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"barrage-send-{self.id}")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def progress(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "sent": self.sent,
            "failed": self.failed,
            "done": self.finished.is_set(),
            "error": self.last_error,
        }

    async def _run(self) -> None:
        try:
            with self._tracer.start_as_current_span(
                self._parent_span_name, context=self._context, kind=trace.SpanKind.PRODUCER
            ) as span:
                span.set_attribute("barrage.run", self.id)
                span.set_attribute("barrage.concurrency", self.request.concurrency)
                span.set_attribute("barrage.duration", self.request.duration)
                start = self._clock()
                # TaskGroup: cancelling the run (client went away) cancels every sender.
                async with asyncio.TaskGroup() as group:
                    for index in range(self.request.concurrency):
                        group.create_task(self._sender(index, start))
                span.set_attribute("barrage.sent", self.sent)
        except Exception as exc:
            self.last_error = str(exc) or type(exc).__name__
        finally:
            self.finished.set()

    async def _sender(self, index: int, start: float) -> None:
        rate, duration = self.request.rate, self.request.duration
        total = int(duration * rate) or 1
        tick = min(0.1, max(0.005, 1 / rate))
        pending: set[asyncio.Future[Any]] = set()
        with self._tracer.start_as_current_span(self._sender_span_name, kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("barrage.sender", index)
            headers = [("traceparent", (barrage_tracing.traceparent(span) or "").encode())]
            if not headers[0][1]:
                headers = []
            produced = 0
            while produced < total:
                elapsed = self._clock() - start
                if elapsed >= duration:
                    break
                # Catch up to the schedule: a slow tick sends more next time instead of falling behind.
                due = min(total, int(elapsed * rate) + 1) - produced
                for _ in range(due):
                    value = json.dumps(
                        {
                            "id": uuid.uuid4().hex,
                            "text": self.request.message,
                            "sent_at": self._clock(),
                            "run": self.id,
                        }
                    ).encode()
                    future = await self._producer.send(self._topic, value=value, headers=headers)
                    future.add_done_callback(self._settled)
                    pending.add(future)
                    future.add_done_callback(pending.discard)
                    produced += 1
                await asyncio.sleep(tick)
            span.set_attribute("barrage.produced", produced)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self.failed += 1
        elif future.exception() is not None:
            self.failed += 1
            self.last_error = str(future.exception())
        else:
            self.sent += 1
