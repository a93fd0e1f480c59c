"""The soak's event sink: appends one line per event to $SINK_FILE ("b SEQ" broker, "k SEQ" Kafka).

The bench counts the lines; an O_APPEND write of one short line is atomic, so instances and threads
writing at once never interleave.
"""

import json
import os

import wisp

KAFKA_TYPE = "dev.knative.kafka.event"


@wisp.cloudevent
def handle(event: wisp.CloudEvent) -> None:
    data = event.data
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    kind = "k" if event["type"] == KAFKA_TYPE else "b"
    fd = os.open(os.environ["SINK_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{kind} {data['seq']}\n".encode())
    finally:
        os.close(fd)
