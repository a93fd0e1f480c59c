"""OpenAPI v3 (what kubectl explain and kubectl's field-validation check read) and v2, from the CRD schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.k8s_api.read_side import read_api
from wisp.api import kinds as k
from wisp.control.k8s_discovery import groups
from wisp.control.k8s_openapi import definition_name, v2_bytes, v3_document
from wisp.store import Store

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    store = Store(None, lambda: 0.0)
    store.open()
    async with read_api(store) as (http, _):
        yield http
    store.close()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


GROUP_VERSIONS = [(group, version) for group, versions in groups().items() for version in versions]


@pytest.mark.parametrize(("group", "version"), GROUP_VERSIONS, ids=lambda v: v or "core")
def test_every_reference_resolves_and_every_kind_is_there(group: str, version: str) -> None:
    document = v3_document(group, version)
    assert document is not None
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.removeprefix("#/components/schemas/") in schemas, ref
    for kind in groups()[group][version]:
        schema = schemas[definition_name(kind, version)]
        assert schema["x-kubernetes-group-version-kind"] == [{"group": group, "kind": kind.kind, "version": version}]
        assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])


def test_patch_declares_dry_run_and_field_validation_for_each_stored_kind() -> None:
    """kubectl's query-param verifier reads these: with them it leaves field validation and dry runs to the
    server instead of downloading /openapi/v2 to validate client side."""
    for group, version in GROUP_VERSIONS:
        document = v3_document(group, version)
        assert document is not None
        patched = {}
        for item in document["paths"].values():
            patch = item.get("patch")
            if patch is not None:
                names = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
                patched[patch["x-kubernetes-group-version-kind"]["kind"]] = names
        for kind in groups()[group][version]:
            if not kind.virtual:
                assert {"dryRun", "fieldValidation", "fieldManager", "force"} <= patched[kind.kind], kind.kind


def test_the_service_schema_is_knatives() -> None:
    document = v3_document("serving.knative.dev", "v1")
    assert document is not None
    service = document["components"]["schemas"]["dev.knative.serving.v1.Service"]
    pod_spec = service["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    assert pod_spec["properties"]["containerConcurrency"]["type"] == "integer"
    paths = document["paths"]
    assert set(paths["/apis/serving.knative.dev/v1/namespaces/{namespace}/services/{name}"]) >= {
        "get", "put", "patch", "delete", "parameters"}
    assert "/apis/serving.knative.dev/v1/namespaces/{namespace}/services/{name}/status" in paths
    pods = v3_document("", "v1")
    assert pods is not None
    assert set(pods["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]) == {"get", "parameters"}


def test_v2_is_swagger_with_definitions_and_no_v3_only_keywords() -> None:
    document = json.loads(v2_bytes())
    assert document["swagger"] == "2.0"
    for ref in refs(document):
        assert ref.startswith("#/definitions/") and ref.removeprefix("#/definitions/") in document["definitions"]
    text = v2_bytes().decode()
    assert '"anyOf"' not in text and '"oneOf"' not in text and '"nullable"' not in text
    assert definition_name(k.SERVICE, "v1") in document["definitions"]


async def test_root_lists_each_group_version_by_hash(client: httpx.AsyncClient) -> None:
    root = (await client.get("/openapi/v3")).json()
    assert "apis/serving.knative.dev/v1" in root["paths"] and "api/v1" in root["paths"]
    url = root["paths"]["apis/serving.knative.dev/v1"]["serverRelativeURL"]
    hashed = await client.get(url)
    assert hashed.status_code == 200 and hashed.headers["cache-control"] == "public, immutable"
    plain = await client.get("/openapi/v3/apis/serving.knative.dev/v1")
    assert plain.content == hashed.content and plain.headers["cache-control"] != "public, immutable"
    assert (await client.get("/openapi/v3/apis/nothing.example.com/v1")).status_code == 404


async def test_v2_protobuf_is_not_acceptable_json_is_served(client: httpx.AsyncClient) -> None:
    refused = await client.get("/openapi/v2", headers={"Accept": PROTOBUF})
    assert refused.status_code == 406 and refused.json()["reason"] == "NotAcceptable"
    served = await client.get("/openapi/v2", headers={"Accept": f"{PROTOBUF}, application/json"})
    assert served.status_code == 200 and served.json()["swagger"] == "2.0"
