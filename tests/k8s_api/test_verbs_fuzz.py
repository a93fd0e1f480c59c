"""Hostile query parameters and apply bodies: every one is answered by a parse or a 400-class refusal, never an
exception (Hypothesis)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.k8s_api.verbs_server import ServedApi, served_api
from wisp.api import kinds as k
from wisp.control.k8s_apply import parse_apply_body, server_side_apply
from wisp.control.k8s_list import decode_continue
from wisp.control.k8s_selectors import parse
from wisp.control.refusal import Refused

KSVCS = "/apis/serving.knative.dev/v1/namespaces/default/services"
SELECTOR_TEXT = st.lists(st.sampled_from([*"ab=!,()._/-0x<> ", "in", "notin", "app", "=="]), max_size=20).map(
    "".join)


@settings(max_examples=500, deadline=None)
@given(labels=SELECTOR_TEXT | st.text(max_size=20), fields=SELECTOR_TEXT | st.text(max_size=20))
def test_selectors_parse_or_are_refused_with_400(labels: str, fields: str) -> None:
    try:
        selector = parse(labels, fields)
    except Refused as refused:
        assert refused.code == 400 and refused.reason == "BadRequest"
    else:
        selector.matches({"metadata": {"name": "x", "namespace": "y", "labels": {"a": "b", "x": "1"}}})


@settings(max_examples=300, deadline=None)
@given(token=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.hex()))
def test_continue_tokens_decode_or_are_refused_with_400(token: str) -> None:
    try:
        decode_continue(token)
    except Refused as refused:
        assert refused.code == 400


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.sampled_from([
    "a: [", "- 1\n- 2", "--- {}\n--- {}", "&a [*a]", "!!binary aGk=", "metadata: {name: x}\nspec: 5",
    "{" * 200 + "}" * 200]))
def test_apply_bodies_parse_or_are_refused(text: str) -> None:
    try:
        config = parse_apply_body(text.encode())
    except Refused as refused:
        assert refused.code == 400
        return
    try:
        server_side_apply(k.SERVICE, None, config, "fuzz", False, 0.0)
    except Refused as refused:
        assert refused.code in (400, 409, 422)


@pytest.fixture(scope="module")
def api() -> Iterator[ServedApi]:
    with served_api() as served:
        yield served


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["labelSelector", "fieldSelector", "limit", "continue",
                                               "resourceVersion", "watch", "timeoutSeconds", "dryRun",
                                               "fieldValidation"]), st.text(max_size=12), max_size=4))
def test_list_and_create_parameters_never_fail_the_server(api: ServedApi, params: dict[str, str]) -> None:
    params = {**params, "timeoutSeconds": "0"} if params.get("watch") in ("1", "true") else params
    with httpx.Client(base_url=api.url, timeout=10) as client:
        listed = client.get(KSVCS, params=params)
        assert listed.status_code < 500, listed.text
        created = client.post(KSVCS, params=params, json={"metadata": {"generateName": "fuzz-"}, "spec": {
            "template": {"spec": {"containers": [{"image": "./a"}]}}}})
        assert created.status_code < 500, created.text
