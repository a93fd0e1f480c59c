"""Hypothesis: any JSON body on any verb of the control API gets an answer below 500, and a refused body
writes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.robustness.api_samples import api_client, collection_path, item_path
from wisp.api import kinds as k
from wisp.store import Store

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Bodies that look like manifests reach further than random JSON does.
MANIFESTISH = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "serving.knative.dev/v1", "eventing.knative.dev/v1", "x/y", ""]) | JSON,
     "kind": st.sampled_from([kind.kind for kind in k.ALL_KINDS]) | JSON},
    optional={"metadata": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["a", "b", "", "A_"]) | JSON,
                                                             "namespace": st.sampled_from(["default", "x"]) | JSON,
                                                             "labels": JSON, "annotations": JSON}) | JSON,
              "spec": JSON, "data": JSON, "stringData": JSON, "status": JSON},
)
BODY = st.one_of(JSON, MANIFESTISH, st.fixed_dictionaries({"items": st.lists(MANIFESTISH | JSON, max_size=3)}))
TARGETS = [("POST", "/apply"), ("POST", "/delete"),
           ("POST", collection_path(k.SERVICE, "default")), ("PUT", item_path(k.SERVICE, "default", "a")),
           ("POST", collection_path(k.CONFIG_MAP, "default")), ("PUT", item_path(k.SECRET, "default", "a")),
           ("PUT", item_path(k.NAMESPACE, "", "a")), ("POST", collection_path(k.TRIGGER, "default"))]


@seed(20261130)
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), body=BODY)
def test_any_json_body_gets_an_answer_below_500(target: tuple[str, str], body: Any) -> None:
    method, path = target

    async def exchange() -> None:
        store = Store(None, clock=lambda: 0.0)
        store.open()
        try:
            async with api_client(store) as client:
                response = await client.request(method, path, content=json.dumps(body).encode(),
                                                 headers={"content-type": "application/json"})
                assert response.status_code < 500, (response.status_code, response.text)
                if response.status_code >= 400:
                    assert store.all() == []
                    assert response.json()["kind"] == "Status"
        finally:
            store.close()

    asyncio.run(exchange())
