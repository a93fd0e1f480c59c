"""Watch over HTTP: newline-delimited WatchEvents from a resourceVersion, initial ADDED events, bookmarks,
timeoutSeconds, 410 as an ERROR event, a name field selector, and the stream's end on namespace deletion and
shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.k8s_api.verbs_server import ServedApi, served_api
from wisp.control.k8s_verbs import REDACTED_DATA
from wisp.control.k8s_watch import INITIAL_EVENTS_END, WatchSettings

KSVCS = "/apis/serving.knative.dev/v1/namespaces/default/services"


def ksvc(name: str, image: str = "./app", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name, **meta},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


@pytest.fixture
def api() -> Iterator[ServedApi]:
    with served_api(watch_settings=WatchSettings(bookmark_interval=0.2)) as served:
        yield served


@pytest.fixture
def client(api: ServedApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield http


def events(client: httpx.Client, path: str, count: int, **params: str) -> list[dict[str, Any]]:
    """The first `count` events of a watch (the stream is then closed)."""
    got: list[dict[str, Any]] = []
    with client.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        for line in response.iter_lines():
            if line:
                got.append(json.loads(line))
            if len(got) == count:
                break
    return got


def summary(got: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in got]


def test_a_watch_without_version_starts_with_what_exists(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    client.post(KSVCS, json=ksvc("b")).raise_for_status()
    assert summary(events(client, KSVCS, 2)) == [("ADDED", "a"), ("ADDED", "b")]


def test_a_watch_resumes_from_a_list_version(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    version = client.get(KSVCS).json()["metadata"]["resourceVersion"]
    current = client.get(f"{KSVCS}/a").json()
    client.put(f"{KSVCS}/a", json={**current, "spec": ksvc("a", "./v2")["spec"]}).raise_for_status()
    client.delete(f"{KSVCS}/a").raise_for_status()
    got = events(client, KSVCS, 2, resourceVersion=version)
    assert summary(got) == [("MODIFIED", "a"), ("DELETED", "a")]
    assert int(got[1]["object"]["metadata"]["resourceVersion"]) > int(got[0]["object"]["metadata"]["resourceVersion"])


def test_live_changes_arrive_while_watching(client: httpx.Client, api: ServedApi) -> None:
    client.post(KSVCS, json=ksvc("first")).raise_for_status()
    version = client.get(KSVCS).json()["metadata"]["resourceVersion"]
    got: list[dict[str, Any]] = []
    started = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=api.url, timeout=10) as other, \
                other.stream("GET", KSVCS, params={"watch": "1", "resourceVersion": version}) as response:
            started.set()
            for line in response.iter_lines():
                got.append(json.loads(line))
                if len(got) == 3:
                    return

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert started.wait(10)
    client.post(KSVCS, json=ksvc("live")).raise_for_status()
    client.patch(f"{KSVCS}/live", json={"metadata": {"labels": {"x": "1"}}},
                 headers={"content-type": "application/merge-patch+json"}).raise_for_status()
    client.delete(f"{KSVCS}/live").raise_for_status()
    watcher.join(10)
    assert summary(got) == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]


def test_a_name_field_selector_watches_one_object(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("first")).raise_for_status()  # a version to resume from ("0" means "any")
    version = client.get(KSVCS).json()["metadata"]["resourceVersion"]
    for name in ("a", "b", "c"):
        client.post(KSVCS, json=ksvc(name)).raise_for_status()
    client.delete(f"{KSVCS}/b").raise_for_status()
    got = events(client, KSVCS, 2, resourceVersion=version, fieldSelector="metadata.name=b")
    assert summary(got) == [("ADDED", "b"), ("DELETED", "b")]


def test_too_old_a_version_is_an_expired_error_event() -> None:
    with served_api(history=3) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        client.post(KSVCS, json=ksvc("first")).raise_for_status()
        start = client.get(KSVCS).json()["metadata"]["resourceVersion"]
        for index in range(5):
            client.post(KSVCS, json=ksvc(f"s{index}")).raise_for_status()
        [error] = events(client, KSVCS, 1, resourceVersion=start)
        assert error["type"] == "ERROR"
        assert (error["object"]["kind"], error["object"]["code"], error["object"]["reason"]) == ("Status", 410,
                                                                                                 "Expired")


def test_bookmarks_and_the_initial_events_end(client: httpx.Client) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    got = events(client, KSVCS, 3, allowWatchBookmarks="true", sendInitialEvents="true",
                 resourceVersionMatch="NotOlderThan")
    assert [e["type"] for e in got] == ["ADDED", "BOOKMARK", "BOOKMARK"]
    assert got[1]["object"]["metadata"]["annotations"] == {INITIAL_EVENTS_END: "true"}
    assert got[2]["object"]["kind"] == "Service" and int(got[2]["object"]["metadata"]["resourceVersion"]) >= 1


def test_timeout_seconds_ends_the_stream(client: httpx.Client) -> None:
    with client.stream("GET", KSVCS, params={"watch": "true", "timeoutSeconds": "1"}) as response:
        lines = list(response.iter_lines())  # returns: the server closed the stream
    assert lines == []


def test_deleting_the_namespace_ends_its_watch(client: httpx.Client, api: ServedApi) -> None:
    client.post("/api/v1/namespaces", json={"metadata": {"name": "team"}}).raise_for_status()
    team = "/apis/serving.knative.dev/v1/namespaces/team/services"
    client.post(team, json=ksvc("a")).raise_for_status()
    first = threading.Event()
    done = threading.Event()
    got: list[str] = []

    def watch() -> None:
        with httpx.Client(base_url=api.url, timeout=10) as other, \
                other.stream("GET", team, params={"watch": "true"}) as response:
            for line in response.iter_lines():
                got.append(line)
                first.set()
        done.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert first.wait(10)  # the initial ADDED arrived: the watch is registered
    assert not done.is_set()
    client.delete("/api/v1/namespaces/team").raise_for_status()
    assert done.wait(10), "the watch of a deleted namespace did not end"
    watcher.join(5)
    assert [json.loads(line)["type"] for line in got] == ["ADDED"]


def test_watch_of_computed_kinds_is_not_allowed(client: httpx.Client) -> None:
    response = client.get("/api/v1/namespaces/default/pods", params={"watch": "true"})
    assert (response.status_code, response.json()["reason"]) == (405, "MethodNotAllowed")


def test_a_client_that_goes_away_leaves_no_watcher_behind(client: httpx.Client, api: ServedApi) -> None:
    client.post(KSVCS, json=ksvc("a")).raise_for_status()
    for _ in range(5):
        assert events(client, KSVCS, 1) != []  # each watch is closed by the client after its first event
    deadline = time.monotonic() + 10
    while api.call(lambda: len(api.store.watchers)) and time.monotonic() < deadline:
        time.sleep(0.02)  # the server learns of a disconnect from the connection; there is nothing to await
    assert api.call(lambda: len(api.store.watchers)) == 0


def test_secrets_are_redacted_in_watch_events(client: httpx.Client) -> None:
    secrets = "/api/v1/namespaces/default/secrets"
    client.post(secrets, json={"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t-value"}})
    [added] = events(client, secrets, 1)
    assert "s3cr3t" not in json.dumps(added) and added["object"]["data"] == {"token": REDACTED_DATA}
