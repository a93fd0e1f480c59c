"""A channel's address against bad requests: each refused with a status and a reason, nothing fanned out;
hostile bodies (Hypothesis) never reach a subscriber unless they are CloudEvents."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.eventing_e2e.servers import EventReceiver
from wisp.eventing.channel import ChannelSubscriber, InMemoryChannel
from wisp.eventing.delivery import Deliverer, DeliverySpec, Destination


async def call(app: InMemoryChannel, method: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    scope = {"type": "http", "method": method, "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


class Subscribed:
    """A channel with one subscriber: a real receiver, reached by the real delivery client."""

    async def __aenter__(self) -> tuple[InMemoryChannel, EventReceiver]:
        self.receiver = EventReceiver()
        await self.receiver.start()
        self.deliverer = Deliverer()
        await self.deliverer.start()
        imc = InMemoryChannel("default", "c", self.deliverer, max_body_bytes=4096)
        imc.subscribe(ChannelSubscriber("u1", 1, Destination(self.receiver.url), None, DeliverySpec()))
        return imc, self.receiver

    async def __aexit__(self, *exc: object) -> None:
        await self.deliverer.stop()
        await self.receiver.stop()


CE = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", "content-type": "application/json"}


async def test_bad_requests_are_refused_with_a_reason() -> None:
    async with Subscribed() as (imc, receiver):
        assert (await call(imc, "GET", CE, b""))[0] == 405
        status, text = await call(imc, "POST", {k: v for k, v in CE.items() if k != "ce-type"}, b"{}")
        assert status == 400 and b"type" in text
        assert (await call(imc, "POST", CE, b"x" * 5000))[0] == 413
        assert (await call(imc, "POST", {"content-type": "application/cloudevents-batch+json"}, b"[]"))[0] == 400
        assert receiver.arrivals == []
        assert (await call(imc, "POST", CE, b'{"ok": true}'))[0] == 202
        assert [e["id"] for e in receiver.events] == ["1"]


@settings(max_examples=100, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(["ce-specversion", "ce-id", "ce-source", "ce-type", "content-type",
                                                 "ce-time", "ce-dataschema", "ce-x"]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)),
       body=st.binary(max_size=300))
async def test_hostile_requests_get_an_answer(headers: dict[str, str], body: bytes) -> None:
    async with Subscribed() as (imc, receiver):
        status, _ = await call(imc, "POST", headers, body)
        assert status in (202, 400)
        assert (status == 202) == bool(receiver.arrivals)  # a 202 came after the subscriber had the event
