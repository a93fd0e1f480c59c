"""The soak's function: answers with its revision and greeting, so a rollout (new GREETING) is visible."""

import os

import wisp


@wisp.http
def handle(request: wisp.Request) -> dict[str, str]:
    return {"revision": os.environ.get("K_REVISION", "?"), "greeting": os.environ.get("GREETING", "")}
