"""knative/serving test/conformance/runtime/header_test.go: the headers every request reaches the app with."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from tests.conformance.conftest import Target, conformance_daemon, serve_and_fetch

TOKEN = re.compile(r"^[0-9a-zA-Z!#$%&'*+\-.^_|~]+$")
QUOTED = re.compile(r'^"[^"]*"$')
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
# Knative's conformance runs with tracing on; wisp starts a trace at the ingress as config-tracing says.
CONFIG_TRACING = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "config-tracing", "namespace": "knative-serving"},
                  "data": {"backend": "otlp", "sample-rate": "1"}}


def forwarded_is_valid(value: str) -> bool:
    """RFC 7239: `;`/`,` separated pairs, each a token `=` a token or a quoted string."""
    for pair in re.split(r"[;,]", value):
        if not pair.strip():
            continue
        name, sep, rest = pair.strip().partition("=")
        if not sep or not TOKEN.match(name) or (rest and not (TOKEN.match(rest) or QUOTED.match(rest))):
            return False
    return True


def ip_list(value: str) -> bool:
    try:
        for part in value.split(","):
            ipaddress.ip_address(part.strip())
    except ValueError:
        return False
    return True


def header(info: dict[str, Any], name: str) -> list[str]:
    return [v for key, values in info["request"]["headers"].items() if key.lower() == name.lower() for v in values]


async def test_must_have_headers_set(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        info = await serve_and_fetch(h, target, "headers")
        assert info["request"]["host"] == "headers.default.localhost"
        forwarded = header(info, "forwarded")
        assert forwarded and all(forwarded_is_valid(v) for v in forwarded), forwarded
        assert not forwarded_is_valid("for") and not forwarded_is_valid('for="x') and forwarded_is_valid("for=a;by=b")


async def test_should_have_headers_set(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(CONFIG_TRACING)
        info = await serve_and_fetch(h, target, "headers", headers={"This-Was-User-Set": "a value"})
        assert header(info, "This-Was-User-Set") == ["a value"]
        assert all(re.fullmatch(r"https?", v) for v in header(info, "x-forwarded-proto")) and header(
            info, "x-forwarded-proto")
        assert header(info, "x-forwarded-for") and all(ip_list(v) for v in header(info, "x-forwarded-for"))
        assert header(info, "traceparent") and all(TRACEPARENT.match(v) for v in header(info, "traceparent"))
