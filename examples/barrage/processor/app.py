"""The message-processing service: `python app.py` serves it on $PORT (Knative's container contract).

It receives the KafkaSource's CloudEvents (binary mode; structured accepted), rejects what can never be
processed with 400 (Knative does not retry it), masks banned words, styles the message from its id, and
answers 200 only after the row is committed. Redeliveries are harmless: the table ignores a known id.

Env: PORT, HOST (default 0.0.0.0), TABLE_URL (sqlite path / postgresql:// URL), TABLE_NAME,
BANNED_WORDS (comma-separated), LANES, WRITE_BATCH, TRACE_NAME2 / TRACE_NAME3 (span names),
OTEL_EXPORTER_OTLP_ENDPOINT, LOG_LEVEL.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path


def main(env: Mapping[str, str]) -> None:
    # `examples/barrage/` holds the shared `barrage_table` package and this `processor` package.
    barrage_dir = str(Path(__file__).resolve().parent.parent)
    if barrage_dir not in sys.path:
        sys.path.insert(0, barrage_dir)

    import barrage_tracing
    import uvicorn
    from barrage_table import open_table

    from processor.quiet_server import QuietServer
    from processor.service import ProcessorSettings, create_app

    settings = ProcessorSettings.from_env(env)
    provider = barrage_tracing.make_tracer_provider(env, "test-barrage-process")
    app = create_app(
        settings,
        open_table(settings.table_url, settings.table_name, env),
        provider.get_tracer("barrage.processor"),
        on_shutdown=provider.shutdown,
    )
    config = uvicorn.Config(
        app,
        host=env.get("HOST", "0.0.0.0"),  # Knative's contract: listen on all interfaces
        port=int(env.get("PORT", "8080")),
        log_level=env.get("LOG_LEVEL", "warning"),
        access_log=False,  # one line per event at 1,000 events/s is noise and CPU
        timeout_graceful_shutdown=30,
    )
    server = QuietServer(config)
    server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run does when the server could not start


if __name__ == "__main__":
    main(os.environ)
