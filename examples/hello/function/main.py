"""A wisp function: `handle` gets a Starlette Request and returns what the client sees."""

import os

import wisp


@wisp.http
def handle(request: wisp.Request) -> dict[str, str]:
    name = request.query_params.get("name", "world")
    return {
        "message": f"Hello, {name}!",
        "revision": os.environ.get("K_REVISION", ""),
        "forwardedFor": request.headers.get("x-forwarded-for", ""),
    }
