"""The server of a wisp function in its image: the function runtime wisp forks instances from, under uvicorn.

Run as `python3 /opt/wisp/runtime/wisp_serve.py` with the code directory as the working directory; beside
this file are copies of wisp's `wisp/__init__.py` (the decorators the user's code imports) and of
`wisp/serving/workloads/{signatures,function_app}.py` (the three signatures), so the image runs the same
code as `wisp up`. Knative's runtime contract: listen on $PORT (all interfaces), readiness is the TCP probe
(uvicorn listens once the function has loaded), SIGTERM drains in-flight requests for up to
WISP_DRAIN_SECONDS (the Revision's timeoutSeconds).

`--check` loads the function and prints its signature as JSON, without serving: `wisp export` runs it to
refuse a function whose entry point does not import.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any


def load() -> tuple[Any, str]:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    # Imported by name: in the image they are the copies beside this file, not an installed wisp.
    signatures: Any = importlib.import_module("wisp.serving.workloads.signatures")
    target = signatures.load_target(os.environ.get("FUNCTION_TARGET") or "main:handle")
    return target, str(signatures.detect_signature(target))


def main(argv: list[str]) -> int:
    try:
        target, signature = load()
    except BaseException as exc:  # the user's import failed: say so, as the template does
        if "--check" in argv:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            return 1
        raise
    if "--check" in argv:
        print(json.dumps({"signature": signature}))
        return 0
    import uvicorn

    function_app: Any = importlib.import_module("wisp.serving.workloads.function_app")
    uvicorn.run(
        function_app.build_app(target, signature),
        host=os.environ.get("HOST", "0.0.0.0"),  # Knative's contract: all interfaces
        port=int(os.environ.get("PORT", "8080")),
        lifespan="auto" if signature == "asgi" else "off",
        access_log=False,
        timeout_graceful_shutdown=max(1, round(float(os.environ.get("WISP_DRAIN_SECONDS", "300")))),
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
