"""Discovery as kubectl and the Python client read it: names exactly as Knative's CRDs declare them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.k8s_api.read_side import read_api
from wisp.api import kinds as k
from wisp.control import k8s_crds
from wisp.control.k8s_discovery import AGGREGATED_TYPE, version_priority, wants_aggregated
from wisp.store import Store

CLIENT_GO_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    store = Store(None, lambda: 1_700_000_000.0)
    store.open()
    async with read_api(store) as (http, _):
        yield http
    store.close()


CRD_KINDS = [kind for kind in k.ALL_KINDS if k8s_crds.crd_for(kind) is not None]


@pytest.mark.parametrize("kind", CRD_KINDS, ids=lambda kind: kind.plural)
async def test_each_crd_kind_is_listed_as_its_crd_declares_it(client: httpx.AsyncClient, kind: k.Kind) -> None:
    crd = k8s_crds.crd_for(kind)
    assert crd is not None
    names = crd["spec"]["names"]
    for version in kind.versions:
        listed = (await client.get(f"/apis/{kind.group}/{version}")).json()
        assert listed["kind"] == "APIResourceList" and listed["groupVersion"] == f"{kind.group}/{version}"
        by_name = {r["name"]: r for r in listed["resources"]}
        entry = by_name[names["plural"]]
        assert entry["kind"] == names["kind"]
        assert entry["singularName"] == names.get("singular", names["kind"].lower())
        assert entry.get("shortNames", []) == names.get("shortNames", [])
        assert entry.get("categories", []) == names.get("categories", [])
        assert entry["namespaced"] is (crd["spec"]["scope"] == "Namespaced")
        assert {"get", "list", "create", "update", "patch", "delete", "watch"} <= set(entry["verbs"])
        declared = {v["name"]: v for v in crd["spec"]["versions"]}
        stored = declared.get(kind.version) or crd["spec"]["versions"][0]
        if "status" in (stored.get("subresources") or {}):
            assert by_name[f"{names['plural']}/status"]["verbs"] == ["get", "patch", "update"]


@pytest.mark.parametrize("kind", CRD_KINDS, ids=lambda kind: kind.plural)
def test_wisp_resolves_every_name_kubectl_resolves(kind: k.Kind) -> None:
    """kinds.py is aligned with the CRDs: each short name kubectl knows names the same kind in `wisp get`."""
    crd = k8s_crds.crd_for(kind)
    assert crd is not None
    for short in crd["spec"]["names"].get("shortNames", []):
        assert k.lookup(short) is kind


async def test_core_v1_lists_pods_with_their_log_subresource_and_events(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api")).json()["versions"] == ["v1"]
    resources = {r["name"]: r for r in (await client.get("/api/v1")).json()["resources"]}
    assert resources["pods"]["shortNames"] == ["po"] and resources["pods"]["categories"] == ["all"]
    assert resources["pods"]["verbs"] == ["get", "list"]
    assert resources["pods/log"] == {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                                     "verbs": ["get"]}
    assert resources["events"]["kind"] == "Event" and resources["events"]["shortNames"] == ["ev"]
    assert resources["events"]["verbs"] == ["get", "list", "watch"]
    assert resources["namespaces"]["namespaced"] is False
    assert {"configmaps", "secrets"} <= set(resources)


async def test_aggregated_discovery_says_what_the_legacy_documents_say(client: httpx.AsyncClient) -> None:
    for root in ("/api", "/apis"):
        response = await client.get(root, headers={"Accept": CLIENT_GO_ACCEPT})
        assert response.headers["content-type"] == AGGREGATED_TYPE
        document = response.json()
        assert document["kind"] == "APIGroupDiscoveryList"
        for group in document["items"]:
            name = group["metadata"]["name"]
            for version in group["versions"]:
                legacy = (await client.get(f"/apis/{name}/{version['version']}" if name else
                                           f"/api/{version['version']}")).json()
                plain = {r["name"]: r for r in legacy["resources"] if "/" not in r["name"]}
                assert {r["resource"] for r in version["resources"]} == set(plain)
                for resource in version["resources"]:
                    entry = plain[resource["resource"]]
                    assert resource["verbs"] == entry["verbs"]
                    assert resource.get("shortNames", []) == entry.get("shortNames", [])
                    assert resource["responseKind"]["kind"] == entry["kind"]
                    assert resource["scope"] == ("Namespaced" if entry["namespaced"] else "Cluster")


async def test_a_client_that_asks_for_json_gets_the_legacy_group_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/apis", headers={"Accept": "application/json"})
    assert response.headers["content-type"] == "application/json"
    groups = {g["name"]: g for g in response.json()["groups"]}
    # Kubernetes' version order: GA first, so sources.knative.dev prefers v1 over KafkaSource's v1beta1.
    assert groups["sources.knative.dev"]["preferredVersion"]["version"] == "v1"
    assert groups["serving.knative.dev"]["preferredVersion"]["version"] == "v1"
    assert groups["serving.knative.dev"]["versions"][0]["groupVersion"] == "serving.knative.dev/v1"
    group = (await client.get("/apis/serving.knative.dev")).json()
    assert group["kind"] == "APIGroup" and group["name"] == "serving.knative.dev"


@pytest.mark.parametrize("path", ["/apis/nothing.example.com", "/apis/nothing.example.com/v1",
                                  "/apis/serving.knative.dev/v7", "/api/v2"])
async def test_unknown_groups_and_versions_are_not_found(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404 and response.json()["reason"] == "NotFound"


async def test_version(client: httpx.AsyncClient) -> None:
    version = (await client.get("/version")).json()
    assert version["major"] == "1" and version["gitVersion"].startswith(f"v1.{version['minor']}.0+wisp-")


@given(st.lists(st.sampled_from(["v1", "v2", "v1beta1", "v1beta2", "v2beta1", "v1alpha1", "v1alpha3", "v3alpha1",
                                 "foo", "v10"]), unique=True, min_size=2))
def test_version_order_is_kubernetes_order(versions: list[str]) -> None:
    ordered = sorted(versions, key=version_priority)
    stages = ["ga" if "alpha" not in v and "beta" not in v and v.startswith("v") and v[1:].isdigit() else
              "beta" if "beta" in v else "alpha" if "alpha" in v else "other" for v in ordered]
    rank = {"ga": 0, "beta": 1, "alpha": 2, "other": 3}
    assert [rank[s] for s in stages] == sorted(rank[s] for s in stages)
    ga = [int(v[1:]) for v, s in zip(ordered, stages, strict=True) if s == "ga"]
    assert ga == sorted(ga, reverse=True)


@given(st.text(max_size=200))
def test_any_accept_header_is_answered(accept: str) -> None:
    assert wants_aggregated(accept) in (True, False)
