"""knative/serving test/conformance/api/v1/configuration_test.go, through wisp's Kubernetes API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conformance.api_v1.kube import Kube, is_ready, observed
from tests.conformance.conftest import Target, conformance_daemon
from wisp.types import Resource


def configuration(name: str, target: Target) -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [target.container()]}}}}


async def test_configuration_get_and_list(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(configuration("cfg", target))).status_code == 201
        await kube.ready("Configuration", "cfg")
        assert (await kube.get("Configuration", "cfg"))["metadata"]["name"] == "cfg"
        assert "cfg" in [c["metadata"]["name"] for c in await kube.list("Configuration")]


async def test_update_configuration_metadata(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(configuration("meta", target))).status_code == 201
        cfg = await kube.ready("Configuration", "meta")
        revision = cfg["status"]["latestReadyRevisionName"]

        for field, values in (("labels", {"label-x": "abc", "label-y": "def"}),
                              ("annotations", {"annotation-a": "123", "annotation-b": "456"})):
            def change(c: Resource, field: str = field, values: dict[str, str] = values) -> None:
                c["metadata"].setdefault(field, {}).update(values)

            assert (await kube.update("Configuration", "meta", change)).status_code == 200

            def updated(c: Resource, field: str = field, values: dict[str, str] = values) -> bool:
                have: dict[str, Any] = c["metadata"].get(field, {})
                return all(have.get(key) == value for key, value in values.items()) and observed(c) and is_ready(c)

            cfg = await kube.wait("Configuration", "meta", updated)
            # Metadata is not the template: no new Revision, and nothing propagated to the one there is.
            assert cfg["status"]["latestCreatedRevisionName"] == revision
            rev = await kube.get("Revision", revision)
            assert not set(values) & set(rev["metadata"].get(field, {}))
