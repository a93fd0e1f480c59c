"""The console's sign-in, in front of the control API.

With a token set, every API route wants `Authorization: Bearer <token>`. A browser instead signs in once on
`/ui/login` and gets a session cookie (HttpOnly, Secure, SameSite=Strict) holding an HMAC of its expiry keyed by
the token, never the token itself; ConsoleGate turns a request carrying a valid session into a bearer-authenticated
one for the API. A request that changes something (not GET/HEAD) with a session must also carry the `X-Wisp-CSRF`
header equal to the CSRF cookie (double submit; the value is an HMAC of the session, so it cannot be forged
from another site, which cannot read the cookie or, under SameSite=Strict, send it). Without a token the gate
only serves the static files and passes everything through.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections import deque
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.console.static_files import SECURITY_HEADERS, StaticFiles
from wisp.control.api import status_response

SESSION_COOKIE = "wisp_session"
CSRF_COOKIE = "wisp_csrf"
CSRF_HEADER = "x-wisp-csrf"
SESSION_SECONDS = 12 * 3600
MAX_LOGIN_BODY = 4096
MAX_FAILURES = 10  # wrong tokens per FAILURE_WINDOW before sign-in answers 429
FAILURE_WINDOW = 60.0
SAFE_METHODS = frozenset({"GET", "HEAD"})


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_value(token: str, expires: int) -> str:
    return f"v1.{expires}.{_mac(token, f'session:{expires}')}"


def csrf_value(token: str, session: str) -> str:
    return _mac(token, f"csrf:{session}")[:40]


def valid_session(token: str, value: str, now: float) -> bool:
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return False
    return int(parts[1]) > now and hmac.compare_digest(value, session_value(token, int(parts[1])))


def _safe_next(target: str) -> str:
    """Only a path on this server (no `//host`, no scheme): sign-in must not redirect elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _is_page(method: str, path: str) -> bool:
    return method == "GET" and (path == "/" or (path.startswith("/ui/") and not path.startswith(("/ui/api/",
                                                                                                "/ui/feed/"))))


class ConsoleGate:
    def __init__(self, app: ASGIApp, token: str | None, static: StaticFiles,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.token = token
        self.static = static
        self.clock = clock
        self._failures: deque[float] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path.startswith("/ui/static/") and method in SAFE_METHODS:
            await self.static.response(path.removeprefix("/ui/static/"), Request(scope))(scope, receive, send)
            return
        if path in ("/ui/login", "/ui/logout"):
            await self._sign_in_out(scope, receive, send)
            return
        token = self.token
        headers = dict(scope["headers"])
        if token is None or b"authorization" in headers:
            await self.app(scope, receive, send)  # no sign-in needed, or the API checks the bearer token itself
            return
        cookies = _cookies(headers)
        session = cookies.get(SESSION_COOKIE, "")
        if valid_session(token, session, self.clock()):
            if method not in SAFE_METHODS:
                given = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
                if not hmac.compare_digest(given, csrf_value(token, session)):
                    await status_response(403, "Forbidden", f"the console's {CSRF_HEADER} header is missing or "
                                          "wrong; reload the page")(scope, receive, send)
                    return
            bearer = (b"authorization", f"Bearer {token}".encode())
            scope = {**scope, "headers": [*scope["headers"], bearer]}
            await self.app(scope, receive, send)
            return
        if _is_page(method, path):
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + ("?" + query if query else "")
            await RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303)(scope, receive, send)
            return
        await self.app(scope, receive, send)  # the API answers 401, which the pages turn into the sign-in page

    async def _sign_in_out(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        token = self.token
        if token is None:
            await RedirectResponse("/", 303)(scope, receive, send)
            return
        if scope["path"] == "/ui/logout":
            response: Response = RedirectResponse("/ui/login", 303)
            if request.method == "POST":
                response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
                response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")
            await response(scope, receive, send)
            return
        target = _safe_next(request.query_params.get("next", "/"))
        if request.method == "GET":
            session = request.cookies.get(SESSION_COOKIE, "")
            if request.query_params.get("check") and valid_session(token, session, self.clock()):
                await RedirectResponse(target, 303)(scope, receive, send)
                return
            message = ("Your browser did not keep the session cookie. It is Secure: beyond this machine the console "
                       "needs HTTPS (a TLS proxy in front of the control API)."
                       if request.query_params.get("check") else "")
            await _login_page(target, message)(scope, receive, send)
            return
        if request.method != "POST":
            await status_response(405, "MethodNotAllowed", "GET or POST")(scope, receive, send)
            return
        now = self.clock()
        while self._failures and self._failures[0] < now - FAILURE_WINDOW:
            self._failures.popleft()
        if len(self._failures) >= MAX_FAILURES:
            await _login_page(target, "Too many wrong tokens; wait a minute.", 429)(scope, receive, send)
            return
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                await status_response(413, "RequestEntityTooLarge", "sign-in form too large")(scope, receive, send)
                return
        given = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            self._failures.append(now)
            await _login_page(target, "That is not the daemon's token.", 401)(scope, receive, send)
            return
        expires = int(now + SESSION_SECONDS)
        session = session_value(token, expires)
        response = RedirectResponse(f"/ui/login?check=1&next={quote(target, safe='')}", 303)
        response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_SECONDS, path="/", secure=True, httponly=True,
                            samesite="strict")
        response.set_cookie(CSRF_COOKIE, csrf_value(token, session), max_age=SESSION_SECONDS, path="/", secure=True,
                            httponly=False, samesite="strict")  # read by the page's script for the header
        await response(scope, receive, send)


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    raw = headers.get(b"cookie", b"").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no session
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _login_page(target: str, message: str, status: int = 200) -> Response:
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · wisp</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/console.css"></head>
<body class="login"><main>
<h1>wisp console</h1>
<form method="post" action="/ui/login?next={html.escape(quote(target, safe=''))}">
<label for="token">Control API token (<code>WISP_TOKEN</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>{note}</main></body></html>"""
    return Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
