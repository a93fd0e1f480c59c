"""uvicorn's HTTP/1.1 protocol (httptools) with limits on the request head, for the ingress and the control API.

uvicorn has no such limits of its own, and httptools joins a header value that spans several reads with
`bytes +=`, so one 100 MB header held the event loop for seconds. The limits are the common ones:

- 64 KiB for the whole head, request line included (Go's `MaxHeaderBytes` is 1 MiB, nginx's buffers 32 KiB):
  past it, 431 Request Header Fields Too Large (RFC 6585 §5);
- 100 header fields (Apache's `LimitRequestFields`): past it, 431 too;
- 8 KiB for the request target (Apache's `LimitRequestLine`, nginx's `large_client_header_buffers`):
  past it, 414 URI Too Long (RFC 9110 §15.5.15).

A head is counted in bytes as they arrive, before the parser sees them, and the parser is never given more
than the limit's worth of one head, so an oversized head is not buffered. A pipelined head that begins in
the middle of a read is counted from the next read on (so it buffers at most one read more), and measured
again from its fields once complete.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

MAX_HEAD_BYTES = 64 * 1024
MAX_FIELDS = 100
MAX_TARGET_BYTES = 8 * 1024


class HeadRefused(Exception):
    """Raised from a parser callback to stop parsing: the request is answered with `status` and the
    connection closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A complete head's size on the wire, near enough: request line and `name: value` lines."""
    return len(url) + 20 + sum(len(name) + len(value) + 4 for name, value in headers)


# uvicorn's callbacks, called directly rather than through super(): these run several times per request.
_base_on_message_begin = HttpToolsProtocol.on_message_begin
_base_on_headers_complete = HttpToolsProtocol.on_headers_complete
_base_on_message_complete = HttpToolsProtocol.on_message_complete


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.Config(http=LimitedHttpToolsProtocol)`."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # parsing a head, or waiting for the next request's first byte
        self._head_bytes = 0  # bytes received since the current head began (or could have)
        self._read_in_head = True  # the current read began in a head, and no request has ended within it
        self._counted = True  # _head_bytes counts the current head from its first byte
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered; whatever else comes is dropped until the connection closes
        in_head = self._read_in_head = self._in_head
        if in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._past_limit(data)
                return
        self._feed(data)

    def _past_limit(self, data: bytes) -> None:
        """Feed only the bytes the limit leaves: enough to tell whether the head ends within it."""
        fits = MAX_HEAD_BYTES - (self._head_bytes - len(data))
        self._feed(data[:fits])
        if self._refused or self.transport.is_closing() or self.parser.should_upgrade():
            return  # an upgraded connection's bytes after its head are dropped, as uvicorn itself does
        if self._in_head and self._read_in_head:
            self._refuse(HeadRefused(431, f"the request head is larger than {MAX_HEAD_BYTES} bytes"))
            return
        # The head ended within the limit (and maybe its whole request): the rest is read as usual.
        self.data_received(data[fits:])

    def _feed(self, data: bytes) -> None:
        # uvicorn's data_received, except that a refusal from a callback is answered with its own status.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadRefused):
                self._refuse(exc.__context__)
            else:
                self._invalid()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def handle_websocket_upgrade(self) -> None:
        # An opening handshake has no body (RFC 6455 §4.1). Given one, uvicorn's websockets protocol never
        # answers and the connection hangs: refused here instead.
        if any((name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding"
               for name, value in self.headers):
            self._refuse(HeadRefused(400, "a WebSocket opening handshake has no body"))
            return
        super().handle_websocket_upgrade()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _refuse(self, refusal: HeadRefused) -> None:
        self._refused = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # An earlier pipelined request is still being answered: the connection ends after that answer
            # rather than interleave two responses.
            cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body = (refusal.reason + "\n").encode()
        status = http.HTTPStatus(refusal.status)
        parts = [b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                     % len(body))
        parts.append(body)
        self.transport.write(b"".join(parts))
        self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._counted = self._read_in_head
        _base_on_message_begin(self)

    def on_url(self, url: bytes) -> None:
        # uvicorn's on_url, inline (it is one line, and this runs on every request).
        self.url = whole = self.url + url
        if len(whole) > MAX_TARGET_BYTES:
            raise HeadRefused(414, f"the request target is longer than {MAX_TARGET_BYTES} bytes")

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self.headers) > MAX_FIELDS:
            raise HeadRefused(431, f"the request has more than {MAX_FIELDS} header fields")
        if not self._counted and _head_size(self.url, self.headers) > MAX_HEAD_BYTES:
            raise HeadRefused(431, f"the request head is larger than {MAX_HEAD_BYTES} bytes")
        _base_on_headers_complete(self)

    def on_message_complete(self) -> None:
        # The next head begins here; if that is mid-read, the rest of the read is not counted towards it.
        self._in_head = True
        self._head_bytes = 0
        self._read_in_head = False
        _base_on_message_complete(self)
