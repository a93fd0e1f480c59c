"""A cloudevent function for the export tests: replies with an event carrying what it received."""

import wisp


@wisp.cloudevent
def handle(event: wisp.CloudEvent) -> wisp.CloudEvent:
    return wisp.CloudEvent(
        {"type": "dev.wisp.test.echoed", "source": "/echo", "subject": event["type"]},
        {"received": event.data, "from": event["source"]},
    )
