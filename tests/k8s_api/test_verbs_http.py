"""The Kubernetes verbs over HTTP against the control API on a real store: list (selectors, pages), create
(generateName), update (conflicts), delete (preconditions, collections), dryRun, fieldValidation, status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.k8s_api.verbs_server import ServedApi, served_api
from wisp.api import kinds as k
from wisp.control.k8s_verbs import NAME_ALPHABET

KSVCS = "/apis/serving.knative.dev/v1/namespaces/default/services"
CMS = "/api/v1/namespaces/default/configmaps"


def ksvc(name: str | None = None, image: str = "./app", **meta: Any) -> dict[str, Any]:
    metadata = dict(meta)
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": metadata,
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


@pytest.fixture
def api() -> Iterator[ServedApi]:
    with served_api() as served:
        yield served


@pytest.fixture
def client(api: ServedApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield http


def names(response: httpx.Response) -> list[str]:
    return [item["metadata"]["name"] for item in response.json()["items"]]


def test_list_is_a_typed_list_at_the_stores_version(client: httpx.Client, api: ServedApi) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    answer = client.get(KSVCS).json()
    assert (answer["apiVersion"], answer["kind"]) == ("serving.knative.dev/v1", "ServiceList")
    assert answer["metadata"]["resourceVersion"] == str(api.call(api.store.version))


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]), ("app==web", ["a", "b"]), ("app!=web", ["c", "d"]), ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]), ("app in (web, db)", ["a", "b", "c"]), ("app notin (web)", ["c", "d"]),
    ("app=web,tier=front", ["a"]), ("", ["a", "b", "c", "d"]),
])
def test_label_selectors(client: httpx.Client, selector: str, expected: list[str]) -> None:
    for name, labels in (("a", {"app": "web", "tier": "front"}), ("b", {"app": "web"}),
                         ("c", {"app": "db", "tier": "back"}), ("d", {})):
        client.post(KSVCS, json=ksvc(name, labels=labels)).raise_for_status()
    assert names(client.get(KSVCS, params={"labelSelector": selector})) == expected


def test_field_selectors_on_name_and_namespace(client: httpx.Client) -> None:
    for name in ("a", "b"):
        client.post(KSVCS, json=ksvc(name)).raise_for_status()
    client.post("/api/v1/namespaces", json={"metadata": {"name": "team"}}).raise_for_status()
    client.post("/apis/serving.knative.dev/v1/namespaces/team/services", json=ksvc("a")).raise_for_status()
    assert names(client.get(KSVCS, params={"fieldSelector": "metadata.name=b"})) == ["b"]
    assert names(client.get(KSVCS, params={"fieldSelector": "metadata.name!=b"})) == ["a"]
    everywhere = client.get("/apis/serving.knative.dev/v1/services",
                            params={"fieldSelector": "metadata.namespace=team"})
    assert [i["metadata"]["namespace"] for i in everywhere.json()["items"]] == ["team"]


@pytest.mark.parametrize(("params", "message"), [
    ({"labelSelector": "app in (web"}, "unable to parse requirement"),
    ({"labelSelector": "a b c"}, "unable to parse requirement"),
    ({"fieldSelector": "spec.foo=x"}, "field label not supported: spec.foo"),
    ({"fieldSelector": "metadata.name"}, "invalid selector"),
])
def test_bad_selectors_are_400(client: httpx.Client, params: dict[str, str], message: str) -> None:
    response = client.get(KSVCS, params=params)
    assert (response.status_code, response.json()["reason"]) == (400, "BadRequest")
    assert message in response.json()["message"]


def test_pages_are_one_consistent_list(client: httpx.Client) -> None:
    for index in range(7):
        client.post(KSVCS, json=ksvc(f"s{index}")).raise_for_status()
    first = client.get(KSVCS, params={"limit": "3"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["s0", "s1", "s2"]
    assert first["metadata"]["remainingItemCount"] == 4
    # Changes after the first page do not show in the next ones: the list is as of its resourceVersion.
    client.delete(f"{KSVCS}/s4").raise_for_status()
    client.post(KSVCS, json=ksvc("s35")).raise_for_status()
    token = first["metadata"]["continue"]
    second = client.get(KSVCS, params={"limit": "3", "continue": token}).json()
    third = client.get(KSVCS, params={"limit": "3", "continue": second["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == ["s3", "s4", "s5", "s6"]
    assert "continue" not in third["metadata"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_a_continue_token_older_than_the_history_is_410_expired() -> None:
    with served_api(history=3) as api, httpx.Client(base_url=api.url) as client:
        for index in range(4):
            client.post(KSVCS, json=ksvc(f"s{index}")).raise_for_status()
        token = client.get(KSVCS, params={"limit": "1"}).json()["metadata"]["continue"]
        for index in range(4):
            client.post(KSVCS, json=ksvc(f"t{index}")).raise_for_status()
        response = client.get(KSVCS, params={"limit": "1", "continue": token})
        assert (response.status_code, response.json()["reason"]) == (410, "Expired")
        garbage = client.get(KSVCS, params={"continue": "not-a-token"})
        assert (garbage.status_code, garbage.json()["reason"]) == (400, "BadRequest")


def test_generate_name_draws_kubernetes_suffixes(client: httpx.Client) -> None:
    made = [client.post(KSVCS, json=ksvc(generateName="job-")) for _ in range(20)]
    generated = [m.json()["metadata"]["name"] for m in made]
    assert all(m.status_code == 201 for m in made) and len(set(generated)) == 20
    assert all(n.startswith("job-") and len(n) == 9 and set(n[4:]) <= set(NAME_ALPHABET) for n in generated)
    missing = client.post(KSVCS, json=ksvc())
    assert (missing.status_code, missing.json()["reason"]) == (422, "Invalid")
    assert missing.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_create_twice_is_already_exists(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    again = client.post(KSVCS, json=ksvc("a"))
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    assert again.json()["message"] == 'services.serving.knative.dev "a" already exists'


def test_update_with_a_stale_resource_version_is_a_conflict(client: httpx.Client) -> None:
    created = client.post(KSVCS, json=ksvc("a")).json()
    stale = created["metadata"]["resourceVersion"]
    fresh = client.put(f"{KSVCS}/a", json=ksvc("a", image="./v2", resourceVersion=stale))
    assert fresh.status_code == 200 and fresh.json()["metadata"]["generation"] == 2
    late = client.put(f"{KSVCS}/a", json=ksvc("a", image="./v3", resourceVersion=stale))
    assert (late.status_code, late.json()["reason"]) == (409, "Conflict")
    assert "the object has been modified" in late.json()["message"]
    assert client.get(f"{KSVCS}/a").json()["spec"]["template"]["spec"]["containers"][0]["image"] == "./v2"


def test_update_without_resource_version_custom_resources_refuse_core_kinds_allow(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    response = client.put(f"{KSVCS}/a", json=ksvc("a", image="./v2"))
    assert (response.status_code, response.json()["reason"]) == (422, "Invalid")
    assert response.json()["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    client.post(CMS, json={"metadata": {"name": "cm"}, "data": {"a": "1"}}).raise_for_status()
    replaced = client.put(f"{CMS}/cm", json={"metadata": {"name": "cm"}, "data": {"a": "2"}})
    assert replaced.status_code == 200 and replaced.json()["data"] == {"a": "2"}
    assert client.put(f"{CMS}/nobody", json={"metadata": {"name": "nobody"}}).status_code == 404


def test_dry_run_answers_as_a_write_would_and_stores_nothing(client: httpx.Client, api: ServedApi) -> None:
    before = api.call(api.store.version)
    created = client.post(KSVCS, params={"dryRun": "All"}, json=ksvc("ghost"))
    assert created.status_code == 201 and created.json()["metadata"]["name"] == "ghost"
    assert client.get(f"{KSVCS}/ghost").status_code == 404
    real = client.post(KSVCS, json=ksvc("real")).json()
    patched = client.patch(f"{KSVCS}/real", params={"dryRun": "All"}, json={"metadata": {"labels": {"x": "y"}}},
                           headers={"content-type": "application/merge-patch+json"})
    assert patched.json()["metadata"]["labels"] == {"x": "y"}
    deleted = client.delete(f"{KSVCS}/real", params={"dryRun": "All"})
    assert deleted.status_code == 200
    assert client.get(f"{KSVCS}/real").json() == real
    assert api.call(api.store.version) == before + 1
    bad = client.post(KSVCS, params={"dryRun": "Some"}, json=ksvc("x"))
    assert bad.status_code == 400


def test_field_validation_strict_warn_ignore(client: httpx.Client) -> None:
    body = ksvc("a")
    body["spec"]["foo"] = 1
    body["spec"]["template"]["spec"]["containers"][0]["bar"] = True
    strict = client.post(KSVCS, params={"fieldValidation": "Strict"}, json=body)
    assert (strict.status_code, strict.json()["reason"]) == (400, "BadRequest")
    assert strict.json()["message"] == ('strict decoding error: unknown field "spec.foo", unknown field '
                                        '"spec.template.spec.containers[0].bar"')
    warned = client.post(KSVCS, params={"fieldValidation": "Warn"}, json=body)
    assert warned.status_code == 201 and "foo" not in warned.json()["spec"]
    assert warned.headers.get_list("warning") == ['299 - "unknown field \\"spec.foo\\""',
                                                  '299 - "unknown field \\"spec.template.spec.containers[0].bar\\""']
    body["metadata"]["name"] = "b"
    ignored = client.post(KSVCS, params={"fieldValidation": "Ignore"}, json=body)
    assert ignored.status_code == 201 and "warning" not in ignored.headers and "foo" not in ignored.json()["spec"]


def test_invalid_objects_are_422_with_causes_naming_fields(client: httpx.Client) -> None:
    body = ksvc("a")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = 5
    response = client.post(KSVCS, json=body)
    assert (response.status_code, response.json()["reason"]) == (422, "Invalid")
    assert response.json()["message"].startswith('Service.serving.knative.dev "a" is invalid: ')
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.template.spec.containers[0].image"]
    assert client.get(KSVCS).json()["items"] == []


def test_status_subresource(client: httpx.Client) -> None:
    created = client.post(KSVCS, json=ksvc("a")).json()
    body = {**created, "status": {"observedGeneration": 1, "url": "http://a"}}
    put = client.put(f"{KSVCS}/a/status", json=body)
    assert put.status_code == 200 and put.json()["status"]["url"] == "http://a"
    assert put.json()["spec"] == created["spec"]
    patched = client.patch(f"{KSVCS}/a/status", json={"status": {"url": "http://b"}},
                           headers={"content-type": "application/merge-patch+json"})
    assert patched.json()["status"] == {"observedGeneration": 1, "url": "http://b"}
    assert client.get(f"{KSVCS}/a/status").json()["status"]["url"] == "http://b"
    stale = client.put(f"{KSVCS}/a/status", json=body)
    assert (stale.status_code, stale.json()["reason"]) == (409, "Conflict")
    # The main resource ignores status, as with the subresource enabled on a cluster.
    current = client.get(f"{KSVCS}/a").json()
    again = client.put(f"{KSVCS}/a", json={**current, "status": {"url": "http://ignored"}})
    assert again.json()["status"]["url"] == "http://b"


def test_delete_preconditions_propagation_and_collections(client: httpx.Client, api: ServedApi) -> None:
    created = client.post(KSVCS, json=ksvc("a", labels={"app": "x"})).json()
    wrong = client.request("DELETE", f"{KSVCS}/a", json={"preconditions": {"uid": "nope"}})
    assert (wrong.status_code, wrong.json()["reason"]) == (409, "Conflict")
    assert "Precondition failed: UID in precondition: nope" in wrong.json()["message"]
    client.post(KSVCS, json=ksvc("b", labels={"app": "x"})).raise_for_status()
    client.post(KSVCS, json=ksvc("c", labels={"app": "y"})).raise_for_status()
    gone = client.request("DELETE", KSVCS, params={"labelSelector": "app=x"})
    assert gone.json()["kind"] == "ServiceList" and names(gone) == ["a", "b"]
    assert names(client.get(KSVCS)) == ["c"]
    assert client.delete(f"{KSVCS}/a").status_code == 404
    assert created["metadata"]["uid"]
    client.post(CMS, json={"metadata": {"name": "cm"}}).raise_for_status()
    status = client.delete(f"{CMS}/cm").json()
    assert (status["kind"], status["status"], status["details"]["name"]) == ("Status", "Success", "cm")
    assert api.call(lambda: api.store.get(k.CONFIG_MAP, "default", "cm")) is None


def test_an_exact_resource_version_lists_the_past(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    then = client.get(KSVCS).json()["metadata"]["resourceVersion"]
    client.post(KSVCS, json=ksvc("b")).raise_for_status()
    client.delete(f"{KSVCS}/a").raise_for_status()
    past = client.get(KSVCS, params={"resourceVersion": then, "resourceVersionMatch": "Exact"}).json()
    assert names_of(past) == ["a"] and past["metadata"]["resourceVersion"] == then
    assert names(client.get(KSVCS, params={"resourceVersion": then, "resourceVersionMatch": "NotOlderThan"})) \
        == ["b"]
    future = client.get(KSVCS, params={"resourceVersion": "999999", "resourceVersionMatch": "Exact"})
    assert future.status_code == 504


def names_of(answer: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in answer["items"]]
