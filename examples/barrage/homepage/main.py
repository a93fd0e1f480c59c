"""The HomePage function: `handle` is an ASGI app (the function runtime's `asgi` signature).

Env (the seed's names): KAFKA_SERVER, KAFKA_TOPIC, KAFKA_USER, KAFKA_PWD, TABLE_NAME, TABLE_URL,
TRACE_NAME1 (sender span), PARENT_SPAN, LANES, SEND_RATE (messages/s per sender),
OTEL_EXPORTER_OTLP_ENDPOINT / TRACING. Run it alone with `uvicorn main:handle` in this directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# `examples/barrage/` holds the shared `barrage_table` package and this `homepage` package.
_BARRAGE_DIR = str(Path(__file__).resolve().parent.parent)
if _BARRAGE_DIR not in sys.path:
    sys.path.insert(0, _BARRAGE_DIR)

from homepage.app import create_app  # noqa: E402
from homepage.settings import HomeSettings  # noqa: E402

handle = create_app(HomeSettings.from_env(os.environ), dict(os.environ))
