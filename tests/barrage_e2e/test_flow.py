"""The demo's whole path through `wisp up`: HomePage → Kafka → KafkaSource → processor → table, on both stores."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from barrage_table import open_table

from .conftest import drop_table
from .demo import HOMEPAGE_HOST, PROCESSOR, DemoConfig, produced_ids, running_demo, wait_until

pytestmark = pytest.mark.timeout(180)


async def test_send_is_processed_and_stored_once(tmp_path: Path, kafka_bootstrap: str, table_url: str,
                                                 client: httpx.AsyncClient) -> None:
    cfg = DemoConfig(kafka=kafka_bootstrap, table_url=table_url)
    table = open_table(cfg.table_url, cfg.table_name)
    try:
        async with running_demo(tmp_path, cfg) as wisp:
            page = await client.get(wisp.ingress + "/", headers={"Host": HOMEPAGE_HOST})
            assert page.status_code == 200 and "<title>Barrage</title>" in page.text
            services = await wisp.get(client, "/apis/serving.knative.dev/v1/namespaces/default/services")
            ready = {s["metadata"]["name"]: [c["status"] for c in s["status"]["conditions"] if c["type"] == "Ready"]
                     for s in services["items"]}
            assert ready == {"demo-barrage": ["True"], PROCESSOR: ["True"]}, ready

            last = await wisp.send(client, "spam and eggs", concurrency=4, duration=3)
            assert last["failed"] == 0 and last["error"] == ""
            sent, run = int(last["sent"]), str(last["run"])
            assert sent >= 4 * 3 * 10, last  # 20/s per sender by default; a loaded machine may lag a little

            await table.start()

            async def all_stored() -> bool:
                return await table.count(run) >= sent

            await wait_until(all_stored, 60, f"{sent} rows of run {run}")
            produced = await produced_ids(cfg.kafka, cfg.topic, run)
            assert len(produced) == sent and len(set(produced)) == sent
            rows = await table.read_after(0, 10 * sent)
            assert Counter(r.row.id for r in rows) == Counter(produced)  # each exactly once, none missing
            assert {r.row.text for r in rows} == {"*** and eggs"}  # BANNED_WORDS masked by the processor

            # The HomePage reads the same table: its stats agree.
            stats = await client.get(f"{wisp.ingress}/api/stats", params={"run": run}, headers={"Host": HOMEPAGE_HOST})
            assert stats.json()["processed"] == sent

            # One message's trace, kept by the daemon: HomePage → Kafka → KafkaSource → processor → table.
            async def traced() -> dict[str, Any] | None:
                traces = await wisp.get(client, f"/traces?service={PROCESSOR}&limit=200")
                for trace in traces["items"]:
                    if {"sender", "receiver", "result"} <= {span["name"] for span in trace["spans"]}:
                        return trace
                return None

            trace = await wait_until(traced, 30, "a trace with the sender, receiver and result spans")
            # A Send's messages share its trace; follow one message's chain of parents up from its result.
            by_id = {span["spanId"]: span for span in trace["spans"]}
            span = next(span for span in trace["spans"] if span["name"] == "result")
            chain = [span["name"]]
            while span.get("parentSpanId") in by_id:
                span = by_id[span["parentSpanId"]]
                chain.append(span["name"])
            # wisp's own hops are in it: the KafkaSource's dispatch, then the ingress into the processor.
            assert chain == ["result", "receiver", "ingress", "kafka-source", "sender", "barrage-sender"], chain
    finally:
        await table.stop()
        drop_table(cfg)
