"""knative/serving test/conformance/api/v1/service_test.go, through wisp's Kubernetes API.

Left out (docs/conformance.md): TestServiceCreateWithMultipleContainers (one container per Revision);
The serving.knative.dev/creator and lastModifier annotations upstream's
validateAnnotations also checks are not set by wisp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conformance.api_v1.kube import (
    Kube,
    is_failed,
    latest_revision_is,
    set_text,
    text_at,
    text_service,
    validate_control_plane,
    validate_labels_propagation,
)
from tests.conformance.conftest import Target, conformance_daemon, knative_service
from wisp.types import Resource

HOST = "{}.default.localhost"


async def test_service_create_list_and_delete(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("listed", target, "one"))).status_code == 201
        await kube.wait("Service", "listed", latest_revision_is("listed-00001"))
        await validate_control_plane(kube, target, "listed", "listed", "listed-00001", "1")
        assert "listed" in [s["metadata"]["name"] for s in await kube.list("Service")]
        assert (await kube.delete("Service", "listed")).status_code == 200
        # What the Service owned goes with it (Kubernetes' garbage collection of owned objects).
        for kind, name in (("Service", "listed"), ("Configuration", "listed"), ("Route", "listed"),
                           ("Revision", "listed-00001")):
            await kube.gone(kind, name)


async def test_service_create_and_update(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("upd", target, "one"))).status_code == 201
        await kube.wait("Service", "upd", latest_revision_is("upd-00001"))
        await validate_control_plane(kube, target, "upd", "upd", "upd-00001", "1")
        assert await text_at(h, HOST.format("upd")) == "one"
        validate_labels_propagation("upd", await kube.get("Revision", "upd-00001"),
                                    await kube.get("Configuration", "upd"), await kube.get("Route", "upd"))

        # A new "image": a new Revision, which takes the traffic.
        assert (await kube.update("Service", "upd", set_text("two"))).status_code == 200
        await kube.wait("Service", "upd", latest_revision_is("upd-00002"))
        await validate_control_plane(kube, target, "upd", "upd", "upd-00002", "2")
        assert await text_at(h, HOST.format("upd")) == "two"

        # Labels, then annotations, of the template: each a new Revision.
        def template_meta(field: str, values: dict[str, str]) -> Any:
            def change(svc: Resource) -> None:
                svc["spec"]["template"].setdefault("metadata", {}).setdefault(field, {}).update(values)
            return change

        assert (await kube.update("Service", "upd", template_meta("labels", {"label-x": "abc", "label-y": "def"}))
                ).status_code == 200
        await kube.wait("Service", "upd", latest_revision_is("upd-00003"))
        assert (await kube.update("Service", "upd", template_meta(
            "annotations", {"annotation-a": "123", "annotation-b": "456"}))).status_code == 200
        await kube.wait("Service", "upd", latest_revision_is("upd-00004"))
        await validate_control_plane(kube, target, "upd", "upd", "upd-00004", "4")
        revision = await kube.get("Revision", "upd-00004")
        assert revision["metadata"]["labels"]["label-x"] == "abc"
        assert revision["metadata"]["annotations"]["annotation-a"] == "123"
        assert await text_at(h, HOST.format("upd")) == "two"


async def test_service_byo_name(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        body = text_service("byo", target, "one", template_name="byo-byoname")
        assert (await kube.create(body)).status_code == 201
        await kube.wait("Service", "byo", latest_revision_is("byo-byoname"))
        await validate_control_plane(kube, target, "byo", "byo", "byo-byoname", "1")
        assert await text_at(h, HOST.format("byo")) == "one"
        # A template change under the same Revision name is refused.
        refused = await kube.update("Service", "byo", set_text("two"))
        assert refused.status_code >= 400, refused.text


async def test_service_with_traffic_split(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("split", target, "one"))).status_code == 201
        await kube.wait("Service", "split", latest_revision_is("split-00001"))
        assert (await kube.update("Service", "split", set_text("two"))).status_code == 200
        await kube.wait("Service", "split", latest_revision_is("split-00002"))

        def traffic(targets: list[dict[str, Any]]) -> Any:
            def change(svc: Resource) -> None:
                svc["spec"]["traffic"] = targets
            return change

        targets = [{"tag": "one", "revisionName": "split-00001", "percent": 50},
                   {"tag": "two", "revisionName": "split-00002", "percent": 50},
                   {"tag": "latest", "latestRevision": True, "percent": 0}]
        assert (await kube.update("Service", "split", traffic(targets))).status_code == 200

        def shaped(svc: Resource) -> bool:
            got = {t.get("tag"): (t.get("revisionName"), t.get("percent", 0), t.get("latestRevision", False))
                   for t in (svc.get("status") or {}).get("traffic", [])}
            return latest_revision_is("split-00002")(svc) and got == {
                "one": ("split-00001", 50, False), "two": ("split-00002", 50, False),
                "latest": ("split-00002", 0, True)}

        svc = await kube.wait("Service", "split", shaped)
        urls = {t["tag"]: t["url"] for t in svc["status"]["traffic"]}
        assert urls["one"].startswith("http://one-split.default.") and urls["latest"].startswith("http://latest-split.")
        assert await text_at(h, "one-split.default.localhost") == "one"
        assert await text_at(h, "two-split.default.localhost") == "two"
        assert await text_at(h, "latest-split.default.localhost") == "two"
        seen = {await text_at(h, HOST.format("split")) for _ in range(40)}
        assert seen == {"one", "two"}  # 50/50: both answer (a chance of 2 * 2**-40 that one never does)


async def _propagation(tmp_path: Path, target: Target, field: str) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        assert (await kube.create(text_service("prop", target, "one"))).status_code == 201
        await kube.wait("Service", "prop", latest_revision_is("prop-00001"))

        def meta(add: bool, text: str) -> Any:
            def change(svc: Resource) -> None:
                values = svc["metadata"].setdefault(field, {})
                if add:
                    values["juicy"] = "jamba"
                else:
                    values.pop("juicy", None)
                set_text(text)(svc)
            return change

        assert (await kube.update("Service", "prop", meta(True, "two"))).status_code == 200
        await kube.wait("Service", "prop", latest_revision_is("prop-00002"))
        config, route = await kube.get("Configuration", "prop"), await kube.get("Route", "prop")
        assert config["metadata"][field]["juicy"] == "jamba" and route["metadata"][field]["juicy"] == "jamba"
        if field == "labels":
            validate_labels_propagation("prop", await kube.get("Revision", "prop-00002"), config, route)

        assert (await kube.update("Service", "prop", meta(False, "three"))).status_code == 200
        await kube.wait("Service", "prop", latest_revision_is("prop-00003"))
        config, route = await kube.get("Configuration", "prop"), await kube.get("Route", "prop")
        assert "juicy" not in config["metadata"].get(field, {}) and "juicy" not in route["metadata"].get(field, {})
        assert not is_failed(await kube.get("Service", "prop"))


async def test_annotation_propagation(tmp_path: Path, target: Target) -> None:
    await _propagation(tmp_path, target, "annotations")


async def test_label_propagation(tmp_path: Path, target: Target) -> None:
    await _propagation(tmp_path, target, "labels")


async def test_service_create_with_empty_dir(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        kube = Kube(h)
        volume = {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}
        body = knative_service("emptydir", target.container(volumeMounts=[{"name": "data", "mountPath": "/data"}]),
                               spec={"volumes": [volume]})
        assert (await kube.create(body)).status_code == 201
        await kube.wait("Service", "emptydir", latest_revision_is("emptydir-00001"))
        host = HOST.format("emptydir")
        assert (await h.request(host, "/write", params={"path": "/data/text", "text": "From file in empty dir!"})
                ).status_code == 200
        r = await h.request(host, "/file", params={"path": "/data/text"})
        assert (r.status_code, r.text) == (200, "From file in empty dir!")
