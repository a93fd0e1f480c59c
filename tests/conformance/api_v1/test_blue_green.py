"""knative/serving test/conformance/api/v1/blue_green_test.go: two Revisions tagged blue and green, 50/50; each
tag's URL reaches its Revision and the Service's URL reaches both."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.api_v1.kube import Kube, is_ready, latest_revision_is, set_text, text_at, text_service
from tests.conformance.conftest import Target, conformance_daemon
from wisp.types import Resource

REQUESTS = 60


async def test_blue_green_route(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("bg", target, "blue"))).status_code == 201
        await kube.wait("Service", "bg", latest_revision_is("bg-00001"))
        assert (await kube.update("Service", "bg", set_text("green"))).status_code == 200
        await kube.wait("Service", "bg", latest_revision_is("bg-00002"))

        def split(svc: Resource) -> None:
            svc["spec"]["traffic"] = [{"tag": "blue", "revisionName": "bg-00001", "percent": 50},
                                      {"tag": "green", "revisionName": "bg-00002", "percent": 50}]

        assert (await kube.update("Service", "bg", split)).status_code == 200
        svc = await kube.wait("Service", "bg", lambda s: is_ready(s) and {
            t.get("tag") for t in (s.get("status") or {}).get("traffic", [])} == {"blue", "green"})
        urls = {t["tag"]: t["url"] for t in svc["status"]["traffic"]}
        assert urls["blue"].startswith("http://blue-bg.default.") and urls["green"].startswith("http://green-bg.")
        assert await text_at(h, "blue-bg.default.localhost") == "blue"
        assert await text_at(h, "green-bg.default.localhost") == "green"
        texts = [await text_at(h, "bg.default.localhost") for _ in range(REQUESTS)]
        # Upstream wants each side to get at least a minimum share; with 60 requests at 50 %, fewer than 10 on a
        # side has a probability below 1e-7.
        assert texts.count("blue") >= 10 and texts.count("green") >= 10, texts
