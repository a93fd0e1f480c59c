"""While the processing service is gone, messages wait in Kafka; when it is applied again, all are delivered."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from barrage_table import ResultTable, open_table

from .demo import PROCESSOR, DemoConfig, Wisp, demo_resources, produced_ids, running_demo, wait_until

pytestmark = pytest.mark.timeout(180)

SOURCE_PATH = "/apis/sources.knative.dev/v1beta1/namespaces/default/kafkasources/barrage"


def condition(resource: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in resource.get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            return dict(cond)
    return {}


async def test_messages_wait_in_kafka_while_the_processor_is_gone(
        tmp_path: Path, kafka_bootstrap: str, sqlite_url: str, client: httpx.AsyncClient) -> None:
    cfg = DemoConfig(kafka=kafka_bootstrap, table_url=sqlite_url)
    processor = demo_resources(cfg)["10-process.yaml"]
    table = open_table(cfg.table_url, cfg.table_name)
    async with running_demo(tmp_path, cfg) as wisp:
        await table.start()
        try:
            await outage_and_recovery(wisp, cfg, processor, table, client)
        finally:
            await table.stop()


async def outage_and_recovery(wisp: Wisp, cfg: DemoConfig, processor: dict[str, Any], table: ResultTable,
                              client: httpx.AsyncClient) -> None:
    await wisp.delete(client, processor)

    async def processor_gone() -> bool:
        source = await wisp.get(client, SOURCE_PATH)
        return not await wisp.pods(client) and condition(source, "SinkProvided").get("status") == "False"

    await wait_until(processor_gone, 60, "the processor's instances gone and the KafkaSource without a sink")

    last = await wisp.send(client, "while down", concurrency=4, duration=3)
    sent, run = int(last["sent"]), str(last["run"])
    assert last["failed"] == 0 and sent > 0
    assert len(await produced_ids(cfg.kafka, cfg.topic, run)) == sent  # in Kafka...
    assert await table.count(run) == 0  # ...and not processed

    async def waiting_in_kafka() -> bool:  # the source reports it holds them (lag is refreshed every 2 s)
        source = await wisp.get(client, SOURCE_PATH)
        return int(source["status"].get("deliveryStats", {}).get("lag", 0)) > 0

    await wait_until(waiting_in_kafka, 30, "the KafkaSource to report lag")
    assert await table.count(run) == 0

    await wisp.apply(client, processor)

    async def all_stored() -> bool:
        return await table.count(run) >= sent

    await wait_until(all_stored, 90, f"{sent} rows after the processor came back")
    assert len(await wisp.pods(client, PROCESSOR)) >= 1
    produced = await produced_ids(cfg.kafka, cfg.topic, run)
    rows = await table.read_after(0, 10 * sent)
    assert Counter(r.row.id for r in rows if r.row.run == run) == Counter(produced)
    source = await wisp.get(client, SOURCE_PATH)
    assert source["status"]["deliveryStats"]["dropped"] == 0
