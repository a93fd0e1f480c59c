"""PATCH as the API server does it: JSON merge patch, JSON patch (with test), strategic merge for core kinds (415
for custom resources), server-side apply with managedFields and conflicts; malformed patches refused whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.k8s_api.verbs_server import ServedApi, served_api
from wisp.api import kinds as k
from wisp.control.k8s_patch import JSON, MERGE, STRATEGIC, apply_patch
from wisp.control.refusal import Refused

KSVCS = "/apis/serving.knative.dev/v1/namespaces/default/services"
CMS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"


def ksvc(name: str, image: str = "./app") -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


@pytest.fixture(scope="module")
def api() -> Iterator[ServedApi]:
    with served_api() as served:
        yield served


@pytest.fixture
def client(api: ServedApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield http


def patch(client: httpx.Client, path: str, body: Any, content_type: str, **params: str) -> httpx.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(path, content=data, headers={"content-type": content_type}, params=params)


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_merge_patch_of_the_spec_bumps_the_generation(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("merge")).raise_for_status()
    changed = patch(client, f"{KSVCS}/merge",
                    {"spec": {"template": {"spec": {"containers": [{"image": "./v2"}]}}}}, MERGE)
    assert changed.status_code == 200 and image_of(changed.json()) == "./v2"
    assert changed.json()["metadata"]["generation"] == 2
    labels = patch(client, f"{KSVCS}/merge", {"metadata": {"labels": {"a": "b"}}}, MERGE).json()
    assert labels["metadata"]["generation"] == 2  # metadata is not spec
    removed = patch(client, f"{KSVCS}/merge", {"metadata": {"labels": None}}, MERGE).json()
    assert "labels" not in removed["metadata"]


def test_a_merge_patch_naming_an_old_resource_version_is_a_conflict(client: httpx.Client) -> None:
    created = client.post(KSVCS, json=ksvc("guarded")).json()
    patch(client, f"{KSVCS}/guarded", {"metadata": {"labels": {"a": "1"}}}, MERGE).raise_for_status()
    stale = patch(client, f"{KSVCS}/guarded", {"metadata": {"labels": {"a": "2"},
                                                            "resourceVersion": created["metadata"]["resourceVersion"]}},
                  MERGE)
    assert (stale.status_code, stale.json()["reason"]) == (409, "Conflict")


def test_json_patch_with_a_test_operation(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("jp")).raise_for_status()
    path = "/spec/template/spec/containers/0/image"
    ok = patch(client, f"{KSVCS}/jp", [{"op": "test", "path": path, "value": "./app"},
                                       {"op": "replace", "path": path, "value": "./v2"}], JSON)
    assert ok.status_code == 200 and image_of(ok.json()) == "./v2"
    failed = patch(client, f"{KSVCS}/jp", [{"op": "replace", "path": path, "value": "./v3"},
                                           {"op": "test", "path": path, "value": "./app"}], JSON)
    assert (failed.status_code, failed.json()["reason"]) == (422, "Invalid")
    assert image_of(client.get(f"{KSVCS}/jp").json()) == "./v2"  # the first operation was not kept either
    missing = patch(client, f"{KSVCS}/jp", [{"op": "remove", "path": "/spec/nothing"}], JSON)
    assert missing.status_code == 422
    not_a_list = patch(client, f"{KSVCS}/jp", {"op": "remove"}, JSON)
    assert (not_a_list.status_code, not_a_list.json()["reason"]) == (400, "BadRequest")


def test_strategic_merge_is_for_core_kinds_and_refused_for_custom_resources(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("smp")).raise_for_status()
    refused = patch(client, f"{KSVCS}/smp", {"metadata": {"labels": {"a": "b"}}}, STRATEGIC)
    assert (refused.status_code, refused.json()["reason"]) == (415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in refused.json()["message"]
    client.post(CMS, json={"metadata": {"name": "smp", "finalizers": ["a"]}, "data": {"x": "1", "y": "2"}})
    merged = patch(client, f"{CMS}/smp", {"data": {"y": None, "z": "3"}, "metadata": {
        "finalizers": ["b"], "$setElementOrder/finalizers": ["a", "b"]}}, STRATEGIC).json()
    assert merged["data"] == {"x": "1", "z": "3"} and merged["metadata"]["finalizers"] == ["a", "b"]
    replaced = patch(client, f"{CMS}/smp", {"data": {"$patch": "replace", "only": "this"}}, STRATEGIC).json()
    assert replaced["data"] == {"only": "this"}


def test_an_unknown_patch_type_is_415(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("ct")).raise_for_status()
    response = patch(client, f"{KSVCS}/ct", {"metadata": {}}, "text/plain")
    assert (response.status_code, response.json()["reason"]) == (415, "UnsupportedMediaType")


def test_patch_of_a_missing_object_is_404(client: httpx.Client) -> None:
    response = patch(client, f"{KSVCS}/nobody", {"metadata": {}}, MERGE)
    assert (response.status_code, response.json()["reason"]) == (404, "NotFound")


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_server_side_apply_creates_records_managers_and_detects_conflicts(client: httpx.Client) -> None:
    config = ("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: ssa\n  labels:\n    team: a\n"
              "spec:\n  template:\n    spec:\n      containers:\n      - image: ./app\n")
    no_manager = patch(client, f"{KSVCS}/ssa", config, APPLY)
    assert (no_manager.status_code, no_manager.json()["reason"]) == (400, "BadRequest")
    created = patch(client, f"{KSVCS}/ssa", config, APPLY, fieldManager="alice")
    assert created.status_code == 201
    alice = managers(created.json())[("alice", "Apply")]
    assert alice["f:metadata"] == {"f:labels": {"f:team": {}}}
    assert "f:containers" in alice["f:spec"]["f:template"]["f:spec"]
    # Bob applies the same label with another value: a conflict with alice, nothing written.
    bob = config.replace("team: a", "team: b").replace("./app", "./bob")
    conflict = patch(client, f"{KSVCS}/ssa", bob, APPLY, fieldManager="bob")
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "Conflict")
    fields = {c["field"] for c in conflict.json()["details"]["causes"]}
    assert fields == {".metadata.labels.team", ".spec.template.spec.containers"}
    assert conflict.json()["message"].startswith("Apply failed with 2 conflicts")
    assert client.get(f"{KSVCS}/ssa").json()["metadata"]["labels"] == {"team": "a"}
    # Forced, bob takes the fields over.
    forced = patch(client, f"{KSVCS}/ssa", bob, APPLY, fieldManager="bob", force="true").json()
    assert forced["metadata"]["labels"] == {"team": "b"} and image_of(forced) == "./bob"
    owners = managers(forced)
    assert "f:labels" in owners[("bob", "Apply")]["f:metadata"]
    assert "f:labels" not in owners.get(("alice", "Apply"), {}).get("f:metadata", {})
    # Bob drops the label from his configuration: nobody else owns it, so it goes.
    dropped = patch(client, f"{KSVCS}/ssa", bob.replace("  labels:\n    team: b\n", ""), APPLY,
                    fieldManager="bob").json()
    assert "labels" not in dropped["metadata"]


def test_server_side_apply_dry_run_and_strict_validation(client: httpx.Client) -> None:
    config = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "ssa-dry"},
              "spec": {"template": {"spec": {"containers": [{"image": "./app"}]}}, "bogus": 1}}
    strict = patch(client, f"{KSVCS}/ssa-dry", config, APPLY, fieldManager="m", fieldValidation="Strict")
    assert strict.status_code == 400 and 'unknown field "spec.bogus"' in strict.json()["message"]
    del config["spec"]["bogus"]
    dry = patch(client, f"{KSVCS}/ssa-dry", config, APPLY, fieldManager="m", dryRun="All")
    assert dry.status_code == 201 and client.get(f"{KSVCS}/ssa-dry").status_code == 404


def test_updates_are_recorded_as_update_managers(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("upd"), params={"fieldManager": "creator"}).raise_for_status()
    changed = patch(client, f"{KSVCS}/upd", {"metadata": {"labels": {"x": "y"}}}, MERGE, fieldManager="labeler")
    owners = managers(changed.json())
    assert owners[("labeler", "Update")] == {"f:metadata": {"f:labels": {"f:x": {}}}}
    assert ("creator", "Update") in owners


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
OPERATIONS = st.lists(st.dictionaries(
    st.sampled_from(["op", "path", "value", "from"]),
    st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "/", "/spec", "/spec/x/0", "/metadata/-",
                     "~1", "/spec/template/spec/containers/9", ""]) | JSON_VALUES,
), max_size=5)


@settings(max_examples=300, deadline=None)
@given(content_type=st.sampled_from([MERGE, JSON, STRATEGIC]), body=JSON_VALUES | OPERATIONS)
def test_any_patch_either_applies_or_is_refused_with_a_client_error(content_type: str, body: Any) -> None:
    current = ksvc("victim") | {"status": {"url": "http://x"}}
    for kind in (k.SERVICE, k.CONFIG_MAP):
        snapshot = json.dumps(current, sort_keys=True)
        try:
            result = apply_patch(kind, content_type, current, body)
        except Refused as refused:
            assert refused.code in (400, 415, 422), refused.message
        else:
            assert isinstance(result, dict)
        assert json.dumps(current, sort_keys=True) == snapshot  # the stored object is never changed in place


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=st.sampled_from([MERGE, JSON]), body=JSON_VALUES | OPERATIONS)
def test_a_refused_patch_changes_nothing_over_http(client: httpx.Client, content_type: str, body: Any) -> None:
    client.post(KSVCS, json=ksvc("fuzzed"))
    before = client.get(f"{KSVCS}/fuzzed").json()
    response = patch(client, f"{KSVCS}/fuzzed", body, content_type)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["kind"] == "Status"
        assert client.get(f"{KSVCS}/fuzzed").json() == before


def test_applying_what_the_server_defaulted_is_no_conflict(client: httpx.Client) -> None:
    """The creator's containers hold the server's defaults (name, probe); an apply of the same container without
    them changes nothing, so it is no conflict (shared); another image is."""
    client.post(KSVCS, json=ksvc("shared"), params={"fieldManager": "creator"}).raise_for_status()
    same = json.dumps({**ksvc("shared"), "metadata": {"name": "shared", "labels": {"by": "ssa"}}})
    applied = patch(client, f"{KSVCS}/shared", same, APPLY, fieldManager="applier")
    assert applied.status_code == 200, applied.text
    owners = managers(applied.json())
    assert "f:containers" in owners[("creator", "Update")]["f:spec"]["f:template"]["f:spec"]  # still shared
    other = same.replace("./app", "./other")
    conflict = patch(client, f"{KSVCS}/shared", other, APPLY, fieldManager="applier")
    assert (conflict.status_code, conflict.json()["details"]["causes"][0]["field"]) == (
        409, ".spec.template.spec.containers")
    assert 'conflict with "creator" using serving.knative.dev/v1' in conflict.json()["message"]
