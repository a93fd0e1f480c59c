"""A body sent to a resource's path must be that resource: every kind, every verb that takes a body.

The cases are generated from the kinds registry: each stored kind's path gets a body of every other kind, of
another apiVersion, another name and another namespace, on create (POST to the collection) and replace (PUT to
the item); each is refused with the Kubernetes API server's code and message, and the store is left as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.admission import apply_manifests
from wisp.store import Store
from wisp.types import Resource

from .api_samples import (
    STORED_KINDS,
    VIRTUAL_KINDS,
    api_client,
    collection_path,
    item_path,
    manifest,
    name_for,
    sample_kinds,
)

NS = "team-a"  # not "default": a body's namespace must come from the path, not from a default
VERBS = ("POST", "PUT")


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(None, lambda: 1_700_000_000.0)
    s.open()
    try:
        yield s
    finally:
        s.close()


def _victim(store: Store, kind: Kind) -> Resource:
    """An existing object of `kind`, the one a PUT to its path would replace."""
    apply_manifests([manifest(kind, name_for(kind, "victim"), NS)], store)
    stored = store.get(kind, NS, name_for(kind, "victim"))
    assert stored is not None
    return stored


def _snapshot(store: Store) -> list[tuple[str, Resource]]:
    return [(kind.kind, resource) for kind, resource in store.all()]


async def _send(store: Store, verb: str, path_kind: Kind, body: Resource) -> tuple[int, Resource]:
    path = collection_path(path_kind, NS) if verb == "POST" else item_path(path_kind, NS, name_for(path_kind, "victim"))
    async with api_client(store) as client:
        response = await client.request(verb, path, json=body)
    return response.status_code, response.json()


def _version(kind: Kind) -> str:
    return kind.api_version.rpartition("/")[2]


def _expected_for_other_kind(path_kind: Kind, body_kind: Kind, name: str) -> tuple[int, str]:
    """What the Kubernetes API server answers when a `body_kind` object is sent to a `path_kind` path."""
    if not path_kind.group:  # a compiled-in type there: the body fails to decode into it
        return 400, (f'{body_kind.kind} in version "{_version(body_kind)}" cannot be handled as a {path_kind.kind}: '
                     f"converting ({_version(body_kind)}.{body_kind.kind}) to (core.{path_kind.kind}): "
                     "unknown conversion")
    if body_kind.api_version != path_kind.api_version:  # a custom resource: its create/update handler refuses
        return 400, (f"the API version in the data ({body_kind.api_version}) does not match the expected API "
                     f"version ({path_kind.api_version})")
    return 422, (f'{path_kind.kind}.{path_kind.group} "{name}" is invalid: kind: Invalid value: '
                 f'"{body_kind.kind}": must be {path_kind.kind}')


def test_every_stored_kind_has_a_sample() -> None:
    assert sample_kinds() == {kind.kind for kind in STORED_KINDS}


OTHER_KIND_CASES = [
    pytest.param(verb, path_kind, body_kind, id=f"{verb}-{path_kind.plural}-given-{body_kind.kind}")
    for verb, path_kind, body_kind in itertools.product(VERBS, STORED_KINDS, STORED_KINDS)
    if path_kind is not body_kind
]


@pytest.mark.parametrize(("verb", "path_kind", "body_kind"), OTHER_KIND_CASES)
async def test_a_body_of_another_kind_is_refused(store: Store, verb: str, path_kind: Kind, body_kind: Kind) -> None:
    _victim(store, path_kind)
    before = _snapshot(store)
    # Named as the path's object (PUT) so only the kind differs; valid as what it claims to be.
    name = name_for(path_kind, "victim") if verb == "PUT" else name_for(body_kind, "intruder")
    body = manifest(body_kind, name, NS)
    code, status = await _send(store, verb, path_kind, body)
    expected_code, expected_message = _expected_for_other_kind(path_kind, body_kind, name)
    assert (code, status["kind"], status["code"]) == (expected_code, "Status", expected_code), status
    assert status["reason"] == ("BadRequest" if expected_code == 400 else "Invalid")
    assert status["message"] == expected_message
    assert _snapshot(store) == before, "a refused body changed the store"


def _other_api_versions(kind: Kind) -> list[str]:
    """apiVersions that name `kind` wrongly at its path: an unserved version, and its other served ones."""
    unserved = f"{kind.group}/v9" if kind.group else "v9"
    others = [f"{kind.group}/{v}" if kind.group else v for v in kind.versions[1:]]
    return [unserved, *others]


API_VERSION_CASES = [
    pytest.param(verb, kind, api_version, id=f"{verb}-{kind.plural}-as-{api_version}")
    for verb, kind in itertools.product(VERBS, STORED_KINDS)
    for api_version in _other_api_versions(kind)
]


@pytest.mark.parametrize(("verb", "kind", "api_version"), API_VERSION_CASES)
async def test_a_body_of_another_api_version_is_refused(store: Store, verb: str, kind: Kind, api_version: str) -> None:
    _victim(store, kind)
    before = _snapshot(store)
    body = manifest(kind, name_for(kind, "victim" if verb == "PUT" else "intruder"), NS)
    body["apiVersion"] = api_version
    code, status = await _send(store, verb, kind, body)
    assert code == 400 and status["reason"] == "BadRequest", status
    if kind.group:
        assert status["message"] == (f"the API version in the data ({api_version}) does not match the expected "
                                     f"API version ({kind.api_version})")
    else:
        assert status["message"] == (f'{kind.kind} in version "{api_version}" cannot be handled as a {kind.kind}: '
                                     f'no kind "{kind.kind}" is registered for version "{api_version}"')
    assert _snapshot(store) == before


@pytest.mark.parametrize("kind", STORED_KINDS, ids=lambda kind: kind.plural)
async def test_put_with_another_name_is_refused(store: Store, kind: Kind) -> None:
    _victim(store, kind)
    before = _snapshot(store)
    other = name_for(kind, "someone-else")
    code, status = await _send(store, "PUT", kind, manifest(kind, other, NS))
    assert (code, status["reason"]) == (400, "BadRequest"), status
    assert status["message"] == (f"the name of the object ({other}) does not match the name on the URL "
                                 f"({name_for(kind, 'victim')})")
    assert _snapshot(store) == before


NAMESPACED = [kind for kind in STORED_KINDS if kind.namespaced]


@pytest.mark.parametrize(("verb", "kind"), list(itertools.product(VERBS, NAMESPACED)),
                         ids=lambda v: v if isinstance(v, str) else v.plural)
async def test_a_body_in_another_namespace_is_refused(store: Store, verb: str, kind: Kind) -> None:
    _victim(store, kind)
    before = _snapshot(store)
    body = manifest(kind, name_for(kind, "victim" if verb == "PUT" else "intruder"), "default")
    code, status = await _send(store, verb, kind, body)
    assert (code, status["reason"]) == (400, "BadRequest"), status
    assert status["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    assert _snapshot(store) == before


@pytest.mark.parametrize(("verb", "kind"), list(itertools.product(VERBS, STORED_KINDS)),
                         ids=lambda v: v if isinstance(v, str) else v.plural)
async def test_a_body_without_namespace_apiversion_or_kind_takes_the_paths(store: Store, verb: str,
                                                                          kind: Kind) -> None:
    """As the API server does: the path supplies what the body leaves out (never the namespace `default`)."""
    victim = _victim(store, kind)
    name = name_for(kind, "victim" if verb == "PUT" else "newcomer")
    body = manifest(kind, name)
    del body["apiVersion"], body["kind"]
    body.setdefault("metadata", {})["labels"] = {"changed": "yes"}
    if verb == "PUT":  # a custom resource's update must name the version it replaces, as on a cluster
        body["metadata"]["resourceVersion"] = victim["metadata"]["resourceVersion"]
    code, answer = await _send(store, verb, kind, body)
    assert code == (201 if verb == "POST" else 200), answer
    stored = store.get(kind, NS, name)
    assert stored is not None and stored["metadata"]["labels"]["changed"] == "yes"
    assert stored["metadata"].get("namespace") == (NS if kind.namespaced else None)
    assert (stored["apiVersion"], stored["kind"]) == (kind.api_version, kind.kind)


@pytest.mark.parametrize(("verb", "kind"), list(itertools.product(VERBS, VIRTUAL_KINDS)),
                         ids=lambda v: v if isinstance(v, str) else v.plural)
async def test_computed_kinds_take_no_body(store: Store, verb: str, kind: Kind) -> None:
    body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": "victim", "namespace": NS}}
    code, status = await _send(store, verb, kind, body)
    assert (code, status["reason"]) == (405, "MethodNotAllowed"), status
    assert store.all() == []


@pytest.mark.parametrize("kind", NAMESPACED, ids=lambda kind: kind.plural)
async def test_create_in_the_all_namespaces_collection_is_not_allowed(store: Store, kind: Kind) -> None:
    async with api_client(store) as client:
        response = await client.post(kind.collection_path(None), json=manifest(kind, name_for(kind, "x"), NS))
    assert (response.status_code, response.json()["reason"]) == (405, "MethodNotAllowed")
    assert store.all() == []


async def test_the_reported_case_a_secret_put_over_a_config_map(store: Store) -> None:
    """The probe's case: the ConfigMap keeps its data, and the Secret's value is not echoed."""
    _victim(store, k.CONFIG_MAP)
    body = manifest(k.SECRET, "victim", NS)
    code, status = await _send(store, "PUT", k.CONFIG_MAP, body)
    assert code == 400 and "s3cr3t-value" not in str(status)
    stored = store.get(k.CONFIG_MAP, NS, "victim")
    assert stored is not None and stored["data"] == {"greeting": "hello"} and stored["kind"] == "ConfigMap"
    assert store.get(k.SECRET, NS, "victim") is None


@pytest.mark.parametrize("body", [
    {"data": {"token": "not base64 VERY-SECRET-1!"}},
    {"data": {"token": "VS" * 40 + "!"}},  # long: validators quote it shortened
    {"data": {"token": "x!"}},  # short
    {"data": {"token": {"nested": "VERY-SECRET-3"}}},
    {"data": {"token": 123456789}},
    {"data": "VERY-SECRET-4"},
    {"stringData": "VERY-SECRET-5"},
], ids=["plain", "long", "short", "object", "number", "data-string", "stringdata-string"])
async def test_an_invalid_secret_is_never_echoed(store: Store, body: Resource) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leaky"}, **body}
    [given] = body.values()
    values = [str(v) for v in given.values()] if isinstance(given, dict) else [str(given)]
    async with api_client(store) as client:
        answers = [
            await client.post("/apply", json={"items": [secret]}),
            await client.post(f"/api/v1/namespaces/{NS}/secrets", json=secret),
        ]
        _victim(store, k.SECRET)
        answers.append(await client.put(f"/api/v1/namespaces/{NS}/secrets/victim",
                                        json={**secret, "metadata": {"name": "victim"}}))
    for answer in answers:
        assert answer.status_code == 422, answer.text
        said = "\n".join(_strings(answer.json())).replace("<redacted>", "")
        for value in values:
            assert f"value: {value}" not in said, said
            window = min(8, len(value))
            for i in range(len(value) - window + 1):
                assert value[i:i + window] not in said, (value, said)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
