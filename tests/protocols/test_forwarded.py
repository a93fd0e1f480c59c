"""The Forwarded header the ingress sets is RFC 7239's, for IPv4 and IPv6 clients alike (Knative's conformance
test `TestMustHaveHeadersSet` checks every token and value)."""

from __future__ import annotations

import re

import pytest

from wisp.serving.ingress import _parse_head

TOKEN = re.compile(r"^[0-9a-zA-Z!#$%&'*+\-.^_|~]+$")
QUOTED = re.compile(r'^"[^"]*"$')


def well_formed(value: str) -> bool:
    for pair in re.split("[;,]", value):
        if not pair.strip():
            continue
        name, _, rest = pair.strip().partition("=")
        if not TOKEN.match(name) or not (TOKEN.match(rest) or QUOTED.match(rest)):
            return False
    return True


@pytest.mark.parametrize(("client", "expected"), [
    ("127.0.0.1", "for=127.0.0.1;host=a.default.localhost;proto=http"),
    ("::1", 'for="[::1]";host=a.default.localhost;proto=http'),
])
def test_forwarded_nodes(client: str, expected: str) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "scheme": "http", "client": (client, 5000),
             "headers": [(b"host", b"a.default.localhost:8080"), (b"forwarded", b"for=10.0.0.1")]}
    head = b"".join(_parse_head(scope).parts).decode()
    [forwarded] = [line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith("forwarded: ")]
    assert forwarded == "for=10.0.0.1, " + expected
    assert well_formed(forwarded)
