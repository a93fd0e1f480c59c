"""knative/serving test/conformance/api/v1/revision_test.go, through wisp's Kubernetes API."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.api_v1.kube import Kube, latest_revision_is, text_service
from tests.conformance.conftest import Target, conformance_daemon


async def test_revision_get_and_list(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("revs", target, "one"))).status_code == 201
        await kube.wait("Service", "revs", latest_revision_is("revs-00001"))
        revision = await kube.get("Revision", "revs-00001")
        assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == "revs"
        assert "revs-00001" in [r["metadata"]["name"] for r in await kube.list("Revision")]
