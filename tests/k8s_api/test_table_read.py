"""Server-side printing for `kubectl get`: each CRD's additionalPrinterColumns, core kinds' columns, the
Accept negotiation of the middleware, and the printer columns' JSONPath on hostile input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.k8s_api.read_side import NOW, read_api, service
from wisp.api import kinds as k
from wisp.api.timestamps import rfc3339
from wisp.control import k8s_jsonpath
from wisp.control.admission import apply_manifests
from wisp.control.k8s_table import human_duration, render_table
from wisp.control.k8s_table_asgi import Target, _WatchRewriter, target_of
from wisp.store import Store

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io," \
        "application/json"
READY = {"type": "Ready", "status": "True"}


def ksvc(name: str, **status: Any) -> dict[str, Any]:
    obj = service(name, **status)
    obj["metadata"]["creationTimestamp"] = rfc3339(NOW - 150)
    return obj


def test_ksvc_columns_are_the_crds() -> None:
    table = render_table(k.SERVICE, [ksvc("hello", url="http://hello.default.localhost:8080",
                                          latestCreatedRevisionName="hello-00002",
                                          latestReadyRevisionName="hello-00001",
                                          conditions=[{**READY, "status": "False", "reason": "RevisionMissing"}])],
                         now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["rows"][0]["cells"] == ["hello", "http://hello.default.localhost:8080", "hello-00002",
                                         "hello-00001", "False", "RevisionMissing"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_missing_values_are_empty_cells_and_dates_are_ages() -> None:
    table = render_table(k.SERVICE, [ksvc("new")], now=NOW)
    assert table["rows"][0]["cells"] == ["new", None, None, None, None, None]
    trigger = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
               "metadata": {"name": "t", "creationTimestamp": rfc3339(NOW - 3 * 3600)}, "spec": {"broker": "b"}}
    cells = render_table(k.TRIGGER, [trigger], now=NOW)["rows"][0]["cells"]
    assert cells == ["t", "b", None, "3h", None, None]


def test_wide_columns_escaped_paths_and_lists() -> None:
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
              "metadata": {"name": "default", "annotations": {"eventing.knative.dev/broker.class": "Kafka"}}}
    table = render_table(k.BROKER, [broker], now=NOW)
    priorities = {c["name"]: c["priority"] for c in table["columnDefinitions"]}
    assert priorities["Class"] == 1 and priorities["URL"] == 0  # Class shows with -o wide only
    assert table["rows"][0]["cells"][-1] == "Kafka"
    revision = {"metadata": {"name": "r", "labels": {"serving.knative.dev/configuration": "hello",
                                                     "serving.knative.dev/configurationGeneration": "2"}},
                "status": {"actualReplicas": 3}}
    cells = render_table(k.REVISION, [revision], now=NOW)["rows"][0]["cells"]
    assert cells[:3] == ["r", "hello", "2"] and cells[5] == 3
    source = {"metadata": {"name": "s"}, "spec": {"topics": ["a", "b"], "bootstrapServers": ["h:9092"]}}
    assert render_table(k.KAFKA_SOURCE, [source], now=NOW)["rows"][0]["cells"][1:3] == ['["a","b"]', '["h:9092"]']


def test_core_kinds() -> None:
    secret = {"metadata": {"name": "keys", "creationTimestamp": rfc3339(NOW - 5)}, "data": {"a": "x", "b": "y"}}
    assert render_table(k.SECRET, [secret], now=NOW)["rows"][0]["cells"] == ["keys", "Opaque", "2", "5s"]
    pod = {"metadata": {"name": "p", "creationTimestamp": rfc3339(NOW - 61)}, "spec": {"nodeName": "localhost"},
           "status": {"phase": "Running", "podIP": "127.0.0.1",
                      "containerStatuses": [{"ready": True, "restartCount": 2}]}}
    table = render_table(k.POD, [pod], now=NOW)
    assert table["rows"][0]["cells"][:7] == ["p", "1/1", "Running", "2", "61s", "127.0.0.1", "localhost"]
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Ready", "Status", "Restarts", "Age"]


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (-1, "0s"), (-5, "<invalid>"), (119, "119s"), (120, "2m"), (150, "2m30s"), (600, "10m"),
    (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (50 * 3600, "2d2h"), (8 * 86400, "8d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y")])
def test_ages_read_as_kubectl_prints_them(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


@given(st.text(max_size=80), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                           lambda inner: st.lists(inner, max_size=3)
                                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10))
def test_hostile_paths_and_documents_never_crash(path: str, document: Any) -> None:
    try:
        found = k8s_jsonpath.find(document, path)
    except k8s_jsonpath.JSONPathError:
        return
    assert isinstance(found, list)


@given(st.lists(st.sampled_from([".a", ".b", "[0]", "[-1]", "[*]", "[?(@.t=='x')]", "['a']", "[?(@.n!=1)]"]),
                max_size=5),
       st.recursive(st.integers(0, 2) | st.sampled_from(["x", "y"]),
                    lambda inner: st.lists(inner, max_size=3) | st.fixed_dictionaries(
                        {}, optional={"a": inner, "b": inner, "t": inner, "n": inner}), max_leaves=12))
def test_first_is_the_first_of_find(steps: list[str], document: Any) -> None:
    path = "".join(steps)
    found = k8s_jsonpath.find(document, path)
    expected = found[0] if found else k8s_jsonpath.MISSING
    assert k8s_jsonpath.first(document, path) is expected


def test_filters() -> None:
    doc = {"c": [{"type": "A", "n": 1}, {"type": "Ready", "n": 2}]}
    assert k8s_jsonpath.find(doc, ".c[?(@.type=='Ready')].n") == [2]
    assert k8s_jsonpath.find(doc, '.c[?(@.type!="Ready")].n') == [1]
    assert k8s_jsonpath.find(doc, ".c[?(@.n==2)].type") == ["Ready"]
    assert k8s_jsonpath.find(doc, "{.c[*].n}") == [1, 2]
    assert k8s_jsonpath.find(doc, ".c[-1].n") == [2]
    with pytest.raises(k8s_jsonpath.JSONPathError):
        k8s_jsonpath.find(doc, ".c[?(@.n>1)]")


@pytest.mark.parametrize(("path", "target"), [
    ("/apis/serving.knative.dev/v1/namespaces/default/services", Target(k.SERVICE, "v1", False)),
    ("/apis/serving.knative.dev/v1/services", Target(k.SERVICE, "v1", False)),
    ("/apis/serving.knative.dev/v1/namespaces/default/services/hello", Target(k.SERVICE, "v1", True)),
    ("/api/v1/namespaces", Target(k.NAMESPACE, "v1", False)),
    ("/api/v1/namespaces/default", Target(k.NAMESPACE, "v1", True)),
    ("/api/v1/namespaces/default/pods", Target(k.POD, "v1", False)),
    ("/api/v1/namespaces/default/pods/p/log", None),
    ("/apis/serving.knative.dev/v1", None), ("/apis/nothing/v1/things", None), ("/metrics", None),
])
def test_which_paths_are_tables(path: str, target: Target | None) -> None:
    assert target_of(path) == target


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    store = Store(None, lambda: NOW)
    store.open()
    apply_manifests([service("hello"), service("other"),
                     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"},
                      "stringData": {"API_KEY": "s3cr3t-value"}}], store)
    store.put_status(k.SERVICE, "default", "hello", {"url": "http://hello.default.localhost:8080",
                                                     "conditions": [READY]})
    async with read_api(store) as (http, _):
        yield http, store
    store.close()


async def test_a_list_answers_a_table_when_asked(client: tuple[httpx.AsyncClient, Store]) -> None:
    http, _ = client
    path = "/apis/serving.knative.dev/v1/namespaces/default/services"
    plain = (await http.get(path)).json()
    assert "items" in plain
    response = await http.get(path, headers={"Accept": TABLE})
    assert response.status_code == 200
    table = response.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    rows = {row["cells"][0]: row for row in table["rows"]}
    assert set(rows) == {"hello", "other"}
    assert rows["hello"]["cells"][1] == "http://hello.default.localhost:8080"
    assert rows["hello"]["cells"][4] == "True"
    assert rows["hello"]["object"]["metadata"]["uid"]
    assert int(response.headers["content-length"]) == len(response.content)
    one = (await http.get(f"{path}/hello", headers={"Accept": TABLE})).json()
    assert [row["cells"][0] for row in one["rows"]] == ["hello"]


@pytest.mark.parametrize(("include", "has", "full"), [("None", False, False), ("Metadata", True, False),
                                                      ("Object", True, True)])
async def test_include_object(client: tuple[httpx.AsyncClient, Store], include: str, has: bool, full: bool) -> None:
    http, _ = client
    table = (await http.get("/apis/serving.knative.dev/v1/namespaces/default/services",
                            params={"includeObject": include}, headers={"Accept": TABLE})).json()
    row = table["rows"][0]
    assert ("object" in row) is has
    if has:
        assert ("spec" in row["object"]) is full


async def test_errors_pass_through_as_status(client: tuple[httpx.AsyncClient, Store]) -> None:
    http, _ = client
    response = await http.get("/apis/serving.knative.dev/v1/namespaces/default/services/missing",
                              headers={"Accept": TABLE})
    assert response.status_code == 404 and response.json()["kind"] == "Status"


async def test_a_secret_table_counts_keys_and_never_shows_values(client: tuple[httpx.AsyncClient, Store]) -> None:
    http, _ = client
    response = await http.get("/api/v1/namespaces/default/secrets", params={"includeObject": "Object"},
                              headers={"Accept": TABLE})
    assert response.json()["rows"][0]["cells"][:3] == ["keys", "Opaque", "1"]
    assert "s3cr3t" not in response.text


async def test_watch_events_become_one_row_tables() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    rewriter = _WatchRewriter(send, Target(k.SERVICE, "v1", False), "Metadata", lambda: NOW)
    await rewriter({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")]})
    events = [{"type": "ADDED", "object": ksvc("a")}, {"type": "DELETED", "object": ksvc("b")},
              {"type": "ERROR", "object": {"kind": "Status", "code": 410}}]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    for start in range(0, len(stream), 7):  # chunks that cut lines anywhere
        await rewriter({"type": "http.response.body", "body": stream[start:start + 7], "more_body": True})
    await rewriter({"type": "http.response.body", "body": b"", "more_body": False})
    assert (b"content-length", b"10") not in sent[0]["headers"]
    lines = b"".join(m["body"] for m in sent[1:]).splitlines()
    decoded = [json.loads(line) for line in lines]
    assert [e["type"] for e in decoded] == ["ADDED", "DELETED", "ERROR"]
    assert decoded[0]["object"]["kind"] == "Table" and decoded[0]["object"]["rows"][0]["cells"][0] == "a"
    assert decoded[1]["object"]["rows"][0]["cells"][0] == "b"
    assert decoded[2]["object"] == {"kind": "Status", "code": 410}
    assert sent[-1]["more_body"] is False


def test_integers_beyond_64_bits_still_print() -> None:
    from wisp.store.json_text import dumps  # what the Table rewriter writes with

    assert json.loads(dumps({"cells": [2**70]})) == {"cells": [2**70]}


SEGMENT = st.sampled_from(["api", "apis", "v1", "v1beta1", "serving.knative.dev", "namespaces", "default",
                           "services", "pods", "events", "log", "status", "hello", "x" * 300, "%2F", "..", ""])


ACCEPT = st.sampled_from([TABLE, "application/json", ""]) | st.text(st.characters(min_codepoint=32,
                                                                                   max_codepoint=126), max_size=60)
QUERY = st.dictionaries(st.sampled_from(["includeObject", "watch", "limit", "fieldSelector"]), st.text(max_size=8))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(SEGMENT, min_size=1, max_size=7), accept=ACCEPT, query=QUERY)
async def test_any_read_is_answered_without_a_server_error(client: tuple[httpx.AsyncClient, Store], path: list[str],
                                                            accept: str, query: dict[str, str]) -> None:
    http, _ = client
    query.pop("watch", None)  # a watch streams until the client leaves
    try:
        response = await http.get("/" + "/".join(path), params=query, headers={"Accept": accept})
    except httpx.InvalidURL:
        return
    assert response.status_code < 500, response.text
    if response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
        json.loads(response.content)
