"""knative/serving test/conformance/api/v1/errorcondition_test.go: an image that cannot run, and a container that
keeps exiting, leave the Service, Configuration and Revision Ready=False with a reason and a message, and the
Route failed."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.api_v1.kube import Kube, is_failed
from tests.conformance.conftest import Target, conformance_daemon, knative_service
from wisp.types import Resource


async def _failed_with_reasons(kube: Kube, service: str, route_too: bool) -> None:
    await kube.wait("Service", service, is_failed)
    cfg = await kube.wait("Configuration", service, is_failed)
    revision = cfg["status"]["latestCreatedRevisionName"]
    for resource in (cfg, await kube.wait("Revision", revision, is_failed)):
        ready = next(c for c in resource["status"]["conditions"] if c["type"] == "Ready")
        assert ready.get("reason") and ready.get("message"), ready
    if route_too:
        await kube.wait("Route", service, is_failed)


async def test_container_error_msg(tmp_path: Path, target: Target) -> None:
    # Upstream's InvalidHelloWorld: an image that does not exist (for a local directory: one that is not there).
    missing = "localhost/wisp-conformance-no-such-image:1" if target.kind == "oci" else str(tmp_path / "no-such")
    container = {**target.container(), "image": missing}
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        body: Resource = knative_service("invalid", container)
        assert (await kube.create(body)).status_code == 201
        await _failed_with_reasons(kube, "invalid", route_too=True)
        revision = (await kube.get("Configuration", "invalid"))["status"]["latestCreatedRevisionName"]
        conditions = {c["type"]: c for c in (await kube.get("Revision", revision))["status"]["conditions"]}
        # As Knative's digest resolution reports it: ContainerHealthy (and so Ready) False, ContainerMissing.
        assert conditions["ContainerHealthy"]["reason"] == "ContainerMissing", conditions
        assert conditions["Ready"]["reason"] == "ContainerMissing", conditions
        if target.kind == "oci":
            assert conditions["Ready"]["message"].startswith(f'Unable to fetch image "{missing}"'), conditions


async def test_container_exiting_msg(tmp_path: Path, target: Target) -> None:
    # Upstream's Failing image: starts and exits at once.
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        body = knative_service("exiting", target.container(args=["exit", "5"]))
        assert (await kube.create(body)).status_code == 201
        await _failed_with_reasons(kube, "exiting", route_too=False)
        revision = (await kube.get("Configuration", "exiting"))["status"]["latestCreatedRevisionName"]
        ready = next(c for c in (await kube.get("Revision", revision))["status"]["conditions"] if c["type"] == "Ready")
        assert "exiting at once, as asked" in ready["message"] or "status 5" in ready["message"], ready
