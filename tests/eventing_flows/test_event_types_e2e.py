"""EventType registry through a real daemon: applied EventTypes listed by `wisp get eventtypes`, each
reporting whether its reference exists; channels register the events they carry when Knative's
`eventtype-auto-create` feature is on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.cli.main import app
from wisp.control.conditions import get_condition
from wisp.control.sinks import BROKER_INGRESS_HOST

from .helpers import ce_headers, host_of, imc

pytestmark = pytest.mark.timeout(60)


def event_type(name: str, type_: str, reference: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"description": f"{type_} events", "attributes": [
        {"name": "type", "value": type_, "required": True}, {"name": "source", "value": "/shop"},
        {"name": "specversion", "value": "1.0"}, {"name": "id", "required": True}]}
    if reference is not None:
        spec["reference"] = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": reference}
    return {"apiVersion": "eventing.knative.dev/v1beta3", "kind": "EventType",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def test_event_types_are_listed_with_their_reference(tmp_path: Path) -> None:
    runner = CliRunner()
    async with running_daemon(tmp_path / "state") as h:
        h.apply(event_type("order-created", "shop.order.created", "shop"),
                event_type("anything", "shop.any", None))
        missing = await h.failed("order-created", kind=k.EVENT_TYPE)
        assert (get_condition(missing, "ReferenceExists") or {}).get("reason") == "ResourceDoesNotExist"
        unset = await h.ready("anything", kind=k.EVENT_TYPE)
        assert (get_condition(unset, "ReferenceExists") or {}).get("reason") == "ReferenceNotSet"
        h.apply({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                 "metadata": {"name": "shop", "namespace": "default"}})
        await h.ready("order-created", kind=k.EVENT_TYPE)

        result = await asyncio.to_thread(runner.invoke, app, ["get", "eventtypes"], env={"WISP_API": h.api})
        assert result.exit_code == 0, result.stdout + result.stderr
        names = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]
        assert sorted(names) == ["anything", "order-created"]


async def test_channels_auto_create_event_types_when_the_feature_is_on(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state") as h:
        h.apply(imc("before"))
        await h.ready("before", kind=k.IN_MEMORY_CHANNEL)
        off = await h.request(host_of("before"), "/", "POST", headers=ce_headers("1", "shop.before"), content=b"{}")
        assert off.status_code == 202
        assert h.daemon.store.list(k.EVENT_TYPE, "default") == []  # the feature is off by default

        # The feature and a channel in one apply: the channel's first reconcile sees the feature on.
        h.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "config-features", "namespace": "knative-eventing"},
                 "data": {"eventtype-auto-create": "enabled"}}, imc("orders"))
        await h.ready("orders", kind=k.IN_MEMORY_CHANNEL)
        for event_id, type_ in (("2", "shop.order"), ("3", "shop.order"), ("4", "shop.refund")):
            reply = await h.request(host_of("orders"), "/", "POST", headers=ce_headers(event_id, type_),
                                    content=b"{}")
            assert reply.status_code == 202
        created = h.daemon.store.list(k.EVENT_TYPE, "default")
        types = sorted(next(a["value"] for a in et["spec"]["attributes"] if a["name"] == "type") for et in created)
        assert types == ["shop.order", "shop.refund"]
        for et in created:
            assert et["metadata"]["name"].startswith("et-orders-")
            assert et["spec"]["reference"]["kind"] == "InMemoryChannel"
        await h.ready(created[0]["metadata"]["name"], kind=k.EVENT_TYPE)


async def test_brokers_auto_create_event_types_when_the_feature_is_on(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state") as h:
        h.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "config-features", "namespace": "knative-eventing"},
                 "data": {"eventtype-auto-create": "enabled"}},
                {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                 "metadata": {"name": "shop", "namespace": "default"}})
        await h.ready("shop", kind=k.BROKER)
        for event_id in ("1", "2"):
            reply = await h.request(BROKER_INGRESS_HOST, "/default/shop", "POST",
                                    headers=ce_headers(event_id, "shop.order"), content=b"{}")
            assert reply.status_code == 202
        [created] = h.daemon.store.list(k.EVENT_TYPE, "default")
        assert created["metadata"]["name"].startswith("et-shop-")
        assert created["spec"]["reference"] == {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                                "name": "shop", "namespace": "default"}
        assert created["metadata"]["ownerReferences"][0]["kind"] == "Broker"
