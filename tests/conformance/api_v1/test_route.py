"""knative/serving test/conformance/api/v1/route_test.go, through wisp's Kubernetes API."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.api_v1.kube import Kube, is_ready, set_text, text_at
from tests.conformance.conftest import Target, conformance_daemon
from wisp.types import Resource


def configuration(name: str, target: Target, text: str) -> Resource:
    container = target.container(env=[{"name": "TEXT", "value": text}])
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [container]}}}}


def route(name: str, config: str) -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"traffic": [{"configurationName": config, "percent": 100}]}}


async def test_route_get_and_list(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(configuration("rt", target, "one"))).status_code == 201
        assert (await kube.create(route("rt", "rt"))).status_code == 201
        await kube.ready("Route", "rt")
        assert (await kube.get("Route", "rt"))["metadata"]["name"] == "rt"
        assert "rt" in [r["metadata"]["name"] for r in await kube.list("Route")]


async def test_route_creation(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(configuration("made", target, "one"))).status_code == 201
        assert (await kube.create(route("made", "made"))).status_code == 201
        for generation, text in (("1", "one"), ("2", "two")):
            if generation == "2":
                assert (await kube.update("Configuration", "made", set_text("two"))).status_code == 200
            revision = f"made-0000{generation}"

            def follows(r: Resource, revision: str = revision) -> bool:
                traffic = (r.get("status") or {}).get("traffic", [])
                return is_ready(r) and [(t.get("revisionName"), t.get("percent")) for t in traffic] == [(revision, 100)]

            rt = await kube.wait("Route", "made", follows)
            assert rt["status"]["url"] == "http://made.default.localhost:" + str(h.daemon.network.port) or \
                rt["status"]["url"].startswith("http://made.default.")
            rev = await kube.ready("Revision", revision)
            assert rev["metadata"]["labels"]["serving.knative.dev/configurationGeneration"] == generation
            assert await text_at(h, "made.default.localhost") == text
