"""knative/serving test/conformance/api/v1/generatename_test.go: Services, Configurations and Routes created with
metadata.generateName get a name of the prefix and 5 more characters, and serve."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conformance.api_v1.kube import Kube, is_ready, text_at, text_service
from tests.conformance.conftest import Target, conformance_daemon
from wisp.types import Resource

PREFIX = "generate-name-"


def valid_name(name: str) -> bool:
    """The prefix and Kubernetes' 5-character suffix, all a DNS-1035 label (upstream's validateName)."""
    return re.fullmatch(re.escape(PREFIX) + r"[a-z0-9]{5}", name) is not None and len(name) <= 63


async def test_service_generate_name(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        body = text_service("x", target, "one")
        body["metadata"] = {"generateName": PREFIX, "namespace": "default"}
        created = await kube.create(body)
        assert created.status_code == 201, created.text
        name = created.json()["metadata"]["name"]
        assert valid_name(name), name
        await kube.wait("Service", name, is_ready)
        assert await text_at(h, f"{name}.default.localhost") == "one"


async def test_route_and_config_generate_name(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        config: Resource = {
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"generateName": PREFIX, "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [target.container(env=[{"name": "TEXT", "value": "c"}])]}}}}
        made = await kube.create(config)
        assert made.status_code == 201, made.text
        config_name = made.json()["metadata"]["name"]
        assert valid_name(config_name), config_name
        await kube.wait("Configuration", config_name, is_ready)

        route: Resource = {
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"generateName": PREFIX, "namespace": "default"},
            "spec": {"traffic": [{"configurationName": config_name, "percent": 100}]}}
        made = await kube.create(route)
        assert made.status_code == 201, made.text
        route_name = made.json()["metadata"]["name"]
        assert valid_name(route_name) and route_name != config_name
        await kube.wait("Route", route_name, is_ready)
        assert await text_at(h, f"{route_name}.default.localhost") == "c"
