"""Without a token the control API serves only loopback names: a DNS-rebound page's Host is refused."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wisp.control.host_check import LoopbackHostOnly, is_loopback_name


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:8001", True), ("127.0.0.1", True), ("127.8.9.10:1", True), ("localhost:8001", True),
    ("LOCALHOST", True), ("hello.default.localhost:8080", True), ("[::1]:8001", True), ("::1", True),
    ("localhost.", True),
    ("evil.example:8001", False), ("localhost.evil.example", False), ("10.0.0.1:8001", False),
    ("[::2]:8001", False), ("", False), ("127.0.0.1.evil.example", False), ("[::1", False),
])
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback_name(host) is loopback


@given(st.text(max_size=300))
def test_any_host_value_is_judged_without_error(host: str) -> None:
    assert is_loopback_name(host) in (True, False)


async def test_foreign_host_gets_403_and_reaches_nothing() -> None:
    reached: list[str] = []

    async def endpoint(request: object) -> PlainTextResponse:
        reached.append("yes")
        return PlainTextResponse("ok")

    app = LoopbackHostOnly(Starlette(routes=[Route("/apply", endpoint, methods=["POST"])]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8001") as c:
        ok = await c.post("/apply")
        refused = await c.post("/apply", headers={"Host": "rebound.example:8001"})
    assert ok.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden" and "rebound.example" in refused.json()["message"]
    assert reached == ["yes"]
