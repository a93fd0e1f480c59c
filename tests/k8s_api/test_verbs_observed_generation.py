"""kn waits for metadata.generation == status.observedGeneration with Ready=True: a Service must not say Ready
for a new generation while its Configuration or Route still reports on the previous one (Knative's OutOfDate
and TrafficNotMigrated)."""

from __future__ import annotations

from typing import Any

from wisp.control.serving_builders import service_status


def child(generation: int, observed: int, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation},
            "status": {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": "True"}],
                       **status}}


def service(generation: int) -> dict[str, Any]:
    return {"metadata": {"generation": generation}}


def conditions(status: tuple[dict[str, Any], list[Any]]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status[1]}


def test_a_configuration_behind_its_generation_keeps_the_service_unknown() -> None:
    got = conditions(service_status(service(2), child(2, 1, latestReadyRevisionName="s-00001"),
                                    child(1, 1, traffic=[{"latestRevision": True, "revisionName": "s-00001"}])))
    assert got["ConfigurationsReady"] == ("Unknown", "OutOfDate") and got["Ready"][0] == "Unknown"


def test_traffic_not_yet_on_the_latest_ready_revision_keeps_the_service_unknown() -> None:
    got = conditions(service_status(service(2), child(2, 2, latestReadyRevisionName="s-00002"),
                                    child(1, 1, traffic=[{"latestRevision": True, "revisionName": "s-00001"}])))
    assert got["RoutesReady"] == ("Unknown", "TrafficNotMigrated") and got["Ready"][0] == "Unknown"


def test_all_caught_up_is_ready() -> None:
    got = conditions(service_status(service(2), child(2, 2, latestReadyRevisionName="s-00002"),
                                    child(1, 1, traffic=[{"latestRevision": True, "revisionName": "s-00002"}])))
    assert got["Ready"][0] == "True"
