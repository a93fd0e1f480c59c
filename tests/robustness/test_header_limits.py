"""Limits on the request head, on both of the daemon's servers (issue 8): 431 past 64 KiB or 100 fields, 414 past
an 8 KiB target; the oversized head is never buffered whole, and other clients are served meanwhile. Also the
other head the protocol refuses itself: a WebSocket handshake with a body (which used to hang)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.robustness.raw_http import exchange, request
from tests.serving.harness import Harness, running_daemon
from wisp.head_limits import MAX_FIELDS, MAX_HEAD_BYTES, MAX_TARGET_BYTES

# A request each server answers without any Service: the ingress 404s an unknown host, the API has /healthz.
NORMAL = {"ingress": (b"/", b"nothing.localhost"), "api": (b"/healthz", b"127.0.0.1")}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_daemon(tmp_path / "state") as h:
        yield h


@pytest.fixture(params=["ingress", "api"])
def server(request: pytest.FixtureRequest, daemon: Harness) -> Iterator[tuple[int, bytes, bytes]]:
    """(port, target, host) of a normal request to one of the two servers."""
    port = daemon.daemon.network.port if request.param == "ingress" else daemon.daemon.options.api_port
    yield (port, *NORMAL[request.param])


def with_header_bytes(target: bytes, host: bytes, size: int) -> bytes:
    """A request whose head is `size` bytes in all, padded with one long header."""
    bare = request(target, host=host, headers=[(b"x-pad", b"")])
    return request(target, host=host, headers=[(b"x-pad", b"a" * (size - len(bare)))])


async def assert_served(port: int, target: bytes, host: bytes) -> None:
    done = await exchange(port, request(target, host=host))
    assert len(done.responses) == 1
    assert done.responses[0].status < 500 and done.responses[0].status not in (414, 431)


async def test_head_past_the_limit_gets_431_and_the_connection_ends(server: tuple[int, bytes, bytes]) -> None:
    port, target, host = server
    done = await exchange(port, with_header_bytes(target, host, 100 * 1024), until_closed=True)
    [response] = done.responses
    assert response.status == 431
    assert response.headers[b"connection"] == b"close"
    assert str(MAX_HEAD_BYTES).encode() in response.body
    await assert_served(port, target, host)


async def test_head_limit_counts_across_reads(server: tuple[int, bytes, bytes]) -> None:
    port, target, host = server
    data = with_header_bytes(target, host, MAX_HEAD_BYTES + 1)
    done = await exchange(port, [data[i:i + 1000] for i in range(0, len(data), 1000)], until_closed=True)
    assert [r.status for r in done.responses] == [431]


async def test_head_at_the_limit_is_served(server: tuple[int, bytes, bytes]) -> None:
    port, target, host = server
    data = with_header_bytes(target, host, MAX_HEAD_BYTES)
    # Cut inside the last field, so that the parser sees the head end exactly at the limit.
    done = await exchange(port, [data[:40_000], data[40_000:]])
    assert done.responses[0].status < 500 and done.responses[0].status != 431


async def test_field_count_limit(server: tuple[int, bytes, bytes]) -> None:
    port, target, host = server
    fields = [(b"x-n%d" % i, b"v") for i in range(MAX_FIELDS - 1)]  # with Host: exactly the limit
    served = await exchange(port, request(target, host=host, headers=fields))
    assert served.responses[0].status < 500 and served.responses[0].status != 431
    refused = await exchange(port, request(target, host=host, headers=[*fields, (b"x-one-more", b"v")]),
                             until_closed=True)
    assert [r.status for r in refused.responses] == [431]
    assert b"header fields" in refused.responses[0].body


async def test_target_length_limit(server: tuple[int, bytes, bytes]) -> None:
    port, target, host = server
    at_limit = target + b"?q=" + b"a" * (MAX_TARGET_BYTES - len(target) - 3)
    served = await exchange(port, request(at_limit, host=host))
    assert served.responses[0].status < 500 and served.responses[0].status != 414
    refused = await exchange(port, request(at_limit + b"a", host=host), until_closed=True)
    assert [r.status for r in refused.responses] == [414]


async def test_pipelined_requests_past_the_limit_together_are_all_served(server: tuple[int, bytes, bytes]) -> None:
    """The limit is per head: many small pipelined requests in one write are not one big head."""
    port, target, host = server
    one = request(target, host=host, headers=[(b"x-pad", b"p" * 200)])
    count = 2 * MAX_HEAD_BYTES // len(one)
    done = await exchange(port, one * count, responses=count, timeout=30)
    assert len(done.responses) == count
    assert all(r.status < 500 and r.status not in (414, 431) for r in done.responses)


async def test_pipelined_oversized_head_is_not_served(server: tuple[int, bytes, bytes]) -> None:
    """An oversized head that starts in the middle of a read: the request before it is answered, it is not."""
    port, target, host = server
    first = request(target, host=host)
    done = await exchange(port, first + with_header_bytes(target, host, 100 * 1024), until_closed=True)
    statuses = [r.status for r in done.responses]
    assert statuses[0] < 500 and statuses[0] not in (414, 431)
    # After the first answer: a 431, or (while that answer was still being written) the connection just ends.
    assert statuses[1:] in ([], [431])


async def test_a_huge_header_does_not_stall_other_requests(server: tuple[int, bytes, bytes]) -> None:
    """One client streams a 64 MB header; another's requests keep being answered promptly, and the server cuts
    the huge one off rather than read it all (it used to take seconds of the event loop, quadratically)."""
    port, target, host = server
    total = 64 * 1024 * 1024
    piece = b"a" * (256 * 1024)
    head = request(target, host=host, headers=[(b"x-huge", b"")])[:-2]  # the head, open at the last value

    def huge() -> Iterator[bytes]:
        yield head
        for _ in range(total // len(piece)):
            yield piece

    flood = asyncio.create_task(exchange(port, huge(), until_closed=True, timeout=60))
    slowest = 0.0
    while not flood.done():
        started = time.monotonic()
        await assert_served(port, target, host)
        slowest = max(slowest, time.monotonic() - started)
    done = await flood
    await assert_served(port, target, host)
    assert done.written < total, "the server read the whole 64 MB header"
    assert [r.status for r in done.responses] in ([], [431])
    assert slowest < 1.0, f"a normal request took {slowest:.2f} s while the huge header arrived"


@pytest.mark.parametrize("framing", [(b"content-length", b"2"), (b"transfer-encoding", b"chunked")])
async def test_websocket_handshake_with_a_body_is_answered(server: tuple[int, bytes, bytes],
                                                           framing: tuple[bytes, bytes]) -> None:
    port, target, host = server
    body = b"ab" if framing[0] == b"content-length" else b"2\r\nab\r\n0\r\n\r\n"
    upgrade = [(b"upgrade", b"websocket"), (b"connection", b"upgrade"), (b"sec-websocket-version", b"13"),
               (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="), framing]
    done = await exchange(port, request(target, host=host, headers=upgrade) + body, until_closed=True)
    assert [r.status for r in done.responses] == [400]
    await assert_served(port, target, host)
