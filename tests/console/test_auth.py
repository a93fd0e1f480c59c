"""The console's sign-in gate in front of the real control API app (in-memory store), over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from wisp.console.assembly import Console
from wisp.console.auth import (
    CSRF_COOKIE,
    FAILURE_WINDOW,
    MAX_FAILURES,
    SESSION_COOKIE,
    SESSION_SECONDS,
    _safe_next,
    csrf_value,
    session_value,
)
from wisp.console.sources import ConsoleSources
from wisp.control.api import VirtualKinds, build_api
from wisp.store import Store

TOKEN = "t0ken-for-tests-0123456789abcdef"
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"},
              "data": {"a": "b"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _no_logs(namespace: str, service: str, follow: bool, lines: int) -> AsyncIterator[str]:
    if False:
        yield ""


def _client(token: str | None, clock: FakeClock) -> tuple[httpx.AsyncClient, Store]:
    store = Store(None, clock)
    store.open()
    console = Console(ConsoleSources(store, list, lambda ns: [], list, clock))
    virtual = VirtualKinds(list_pods=lambda ns: [], list_autoscalers=lambda ns: [], service_logs=_no_logs,
                           info=dict, metrics=lambda: (b"", "text/plain"))
    app = console.gate(build_api(store, virtual, token, console.routes()), token)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver"), store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def client(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    http, store = _client(TOKEN, clock)
    async with http:
        yield http
    store.close()


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


async def sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/ui/login?next=%2Fui%2Fobjects", data={"token": TOKEN})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?check=1&next=%2Fui%2Fobjects"
    cookies = _set_cookies(response)
    return {name: header.split(";")[0].split("=", 1)[1] for name, header in cookies.items()}


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def test_without_a_token_the_console_is_open_and_sign_in_goes_home(clock: FakeClock) -> None:
    http, store = _client(None, clock)
    async with http:
        page = await http.get("/")
        assert page.status_code == 200 and "<title>Services · wisp</title>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await http.get("/ui/login")).headers["location"] == "/"
    store.close()


async def test_a_stranger_is_sent_to_sign_in_and_the_api_stays_closed(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/services/default/x?a=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fservices%2Fdefault%2Fx%3Fa%3D1"
    assert (await client.get("/api/v1/namespaces/default/configmaps")).status_code == 401
    assert (await client.get("/ui/feed/services")).status_code == 401
    assert (await client.get("/ui/static/console.css")).status_code == 200  # the sign-in page's style
    login = await client.get("/ui/login?next=%2F")
    assert login.status_code == 200 and 'type="password"' in login.text


async def test_signing_in_sets_a_secure_httponly_strict_cookie_that_is_not_the_token(client: httpx.AsyncClient) -> None:
    wrong = await client.post("/ui/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "not the daemon" in wrong.text and "set-cookie" not in wrong.headers
    response = await client.post("/ui/login", data={"token": TOKEN})
    cookies = _set_cookies(response)
    session = cookies[SESSION_COOKIE].lower()
    assert "httponly" in session and "secure" in session and "samesite=strict" in session
    csrf = cookies[CSRF_COOKIE].lower()
    assert "secure" in csrf and "samesite=strict" in csrf and "httponly" not in csrf
    assert TOKEN not in response.headers.get("set-cookie", "")


async def test_the_session_opens_the_api_and_changes_need_the_csrf_header(client: httpx.AsyncClient) -> None:
    cookies = await sign_in(client)
    headers = _cookie_header(cookies)
    check = await client.get("/ui/login?check=1&next=%2Fui%2Fobjects", headers=headers)
    assert check.status_code == 303 and check.headers["location"] == "/ui/objects"
    assert (await client.get("/", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/namespaces/default/configmaps", headers=headers)).status_code == 200
    refused = await client.post("/apply", json={"items": [CONFIG_MAP]}, headers=headers)
    assert refused.status_code == 403 and "x-wisp-csrf" in refused.json()["message"]
    forged = await client.post("/apply", json={"items": [CONFIG_MAP]}, headers={**headers, "x-wisp-csrf": "0" * 40})
    assert forged.status_code == 403
    applied = await client.post("/apply", json={"items": [CONFIG_MAP]},
                                headers={**headers, "x-wisp-csrf": cookies[CSRF_COOKIE]})
    assert applied.status_code == 200 and applied.json()["items"][0]["action"] == "created"


async def test_an_expired_or_altered_session_is_no_session(client: httpx.AsyncClient, clock: FakeClock) -> None:
    cookies = await sign_in(client)
    value = cookies[SESSION_COOKIE]
    altered = {**cookies, SESSION_COOKIE: value[:-1] + ("0" if value[-1] != "0" else "1")}
    listing = await client.get("/api/v1/namespaces/default/configmaps", headers=_cookie_header(altered))
    assert listing.status_code == 401
    longer = {**cookies, SESSION_COOKIE: session_value("another token", int(clock.now) + 10**6)}
    assert (await client.get("/", headers=_cookie_header(longer))).status_code == 303
    clock.now += SESSION_SECONDS + 1
    assert (await client.get("/", headers=_cookie_header(cookies))).headers["location"].startswith("/ui/login")
    again = await client.get("/ui/login?check=1&next=%2F", headers=_cookie_header(cookies))
    assert again.status_code == 200 and "did not keep the session cookie" in again.text


async def test_wrong_tokens_are_limited(client: httpx.AsyncClient, clock: FakeClock) -> None:
    for _ in range(MAX_FAILURES):
        assert (await client.post("/ui/login", data={"token": "guess"})).status_code == 401
    limited = await client.post("/ui/login", data={"token": TOKEN})
    assert limited.status_code == 429 and "set-cookie" not in limited.headers
    clock.now += FAILURE_WINDOW + 1
    assert (await client.post("/ui/login", data={"token": TOKEN})).status_code == 303


async def test_the_sign_in_page_shows_a_hostile_next_as_text(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/login", params={"next": '/"><script>alert(1)</script>'})
    assert "<script>" not in page.text
    big = await client.post("/ui/login", content=b"token=" + b"a" * 10_000,
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413


@given(st.text(max_size=40))
def test_sign_in_only_redirects_to_a_path_on_this_server(target: str) -> None:
    safe = _safe_next(target)
    assert safe.startswith("/") and not safe.startswith("//") and "\\" not in safe
    assert all(ord(c) >= 32 for c in safe)


def test_csrf_value_depends_on_the_session_and_the_token() -> None:
    a, b = session_value(TOKEN, 10), session_value(TOKEN, 11)
    values: set[Any] = {csrf_value(TOKEN, a), csrf_value(TOKEN, b), csrf_value("other", a)}
    assert len(values) == 3
