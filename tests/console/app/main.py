"""The function the console's browser tests run: prints what it is asked to say, sleeps when asked to."""

import os
import time

import wisp


@wisp.http
def handle(request: wisp.Request) -> dict:
    say = request.query_params.get("say")
    if say:
        print(say, flush=True)
    time.sleep(int(request.query_params.get("ms", "0")) / 1000)
    return {"ok": True, "has_password": bool(os.environ.get("DB_PASSWORD"))}
