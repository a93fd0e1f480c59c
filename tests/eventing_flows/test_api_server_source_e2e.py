"""ApiServerSource through a real daemon: changes to wisp's objects arrive at the sink as Knative's
`dev.knative.apiserver.*` events, selected by kind, label selector and owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon, service
from wisp.api import kinds as k

pytestmark = pytest.mark.timeout(60)


def api_server_source(name: str, sink: str, resources: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sources.knative.dev/v1", "kind": "ApiServerSource",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"serviceAccountName": "events-sa", "resources": resources, "sink": {"uri": sink}, **spec}}


def config_map(name: str, labels: dict[str, str], value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default",
                                                                  "labels": labels}, "data": {"v": value}}


async def test_reports_a_service_created_after_it(tmp_path: Path) -> None:
    sink = EventReceiver()
    await sink.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(api_server_source("services", sink.url,
                                      [{"apiVersion": "serving.knative.dev/v1", "kind": "Service"}]))
            source = await h.ready("services", kind=k.API_SERVER_SOURCE)
            assert source["status"]["sinkUri"] == sink.url and source["status"]["namespaces"] == ["default"]
            h.apply(service("hello", tmp_path / "absent"))
            await sink.wait_until(lambda: any(e["type"] == "dev.knative.apiserver.ref.add" for e in sink.events))
            added = next(e for e in sink.events if e["type"] == "dev.knative.apiserver.ref.add")
            assert added["source"] == "https://kubernetes.default.svc"
            assert added["subject"] == "/apis/serving.knative.dev/v1/namespaces/default/services/hello"
            assert (added["kind"], added["name"], added["namespace"]) == ("Service", "hello", "default")
            assert added.data == {"kind": "Service", "namespace": "default", "name": "hello",
                                  "apiVersion": "serving.knative.dev/v1"}
            h.daemon.store.delete(k.SERVICE, "default", "hello")
            await sink.wait_until(lambda: any(e["type"] == "dev.knative.apiserver.ref.delete" for e in sink.events))
            # Only Services: the Configuration, Route and Revision the Service made are not reported.
            assert {e["kind"] for e in sink.events} == {"Service"}
    finally:
        await sink.stop()


async def test_resource_mode_with_a_label_selector_and_the_first_list(tmp_path: Path) -> None:
    sink = EventReceiver()
    await sink.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(config_map("before", {"app": "shop"}), config_map("other", {"app": "blog"}))
            h.apply(api_server_source("shop-config", sink.url, [
                {"apiVersion": "v1", "kind": "ConfigMap", "selector": {"matchLabels": {"app": "shop"}}}],
                mode="Resource", ceOverrides={"extensions": {"team": "blue"}}))
            await sink.wait_until(lambda: len(sink.arrivals) >= 1, what="the first list's add")
            first = sink.events[0]
            assert (first["type"], first["name"], first["team"]) == ("dev.knative.apiserver.resource.add", "before",
                                                                    "blue")
            assert first.data["data"] == {"v": "1"}  # the object itself
            h.apply(config_map("before", {"app": "shop"}, "2"), config_map("other", {"app": "blog"}, "2"),
                    config_map("after", {"app": "shop"}))
            await sink.wait_until(lambda: len(sink.arrivals) >= 3, what="an update and an add")
            assert [(e["type"].rsplit(".", 1)[1], e["name"]) for e in sink.events] == [
                ("add", "before"), ("update", "before"), ("add", "after")]
            assert sink.events[1].data["data"] == {"v": "2"}
    finally:
        await sink.stop()


async def test_owner_filter(tmp_path: Path) -> None:
    sink = EventReceiver()
    await sink.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(api_server_source("owned", sink.url, [{"apiVersion": "messaging.knative.dev/v1",
                                                           "kind": "InMemoryChannel"}],
                                      owner={"apiVersion": "flows.knative.dev/v1", "kind": "Sequence"}))
            await h.ready("owned", kind=k.API_SERVER_SOURCE)
            h.apply({"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                     "metadata": {"name": "standalone", "namespace": "default"}},
                    {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
                     "metadata": {"name": "seq", "namespace": "default"},
                     "spec": {"steps": [{"uri": sink.url}]}})
            await h.ready("seq", kind=k.SEQUENCE)
            await sink.wait_until(lambda: any(e["type"].endswith(".add") for e in sink.events))
            assert {e["name"] for e in sink.events} == {"seq-kn-sequence-0"}
    finally:
        await sink.stop()
