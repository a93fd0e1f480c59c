"""The server of a Knative Functions project in its image, as the image `func deploy` builds serves it: the
project's `function` package (`new`, else `handle`) under the func-python middleware, whose `serve` runs
hypercorn and answers /health/liveness and /health/readiness.

func-python listens where LISTEN_ADDRESS says (default port 8080); Knative's contract is PORT, so an unset
LISTEN_ADDRESS is derived from PORT. Run with the project directory as the working directory:
`python3 func_serve.py --invoke http|cloudevent`; `--check` only imports the package (and not func-python).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any


def load() -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    function = importlib.import_module("function")
    for name in ("new", "handle"):
        if callable(getattr(function, name, None)):
            return getattr(function, name)
    raise ImportError("the function package exports neither new nor handle (function/__init__.py must import one)")


def main(argv: list[str]) -> int:
    invoke = argv[argv.index("--invoke") + 1] if "--invoke" in argv else "http"
    try:
        handler = load()
    except BaseException as exc:
        if "--check" in argv:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            return 1
        raise
    if "--check" in argv:
        print(json.dumps({"signature": f"func-python {invoke}"}))
        return 0
    port = os.environ.get("PORT", "8080")
    os.environ.setdefault("LISTEN_ADDRESS", f"0.0.0.0:{port}")
    module = "func_python.cloudevent" if invoke == "cloudevent" else "func_python.http"
    middleware: Any = importlib.import_module(module)
    middleware.serve(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
