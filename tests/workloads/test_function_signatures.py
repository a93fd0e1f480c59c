"""Signature detection, decorators and return-value mapping, without processes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

import wisp
from wisp.serving.workloads.function_app import event_response, missing_attributes, to_response
from wisp.serving.workloads.signatures import TargetError, detect_signature, is_async, load_target


def test_decorators_record_the_signature_and_return_the_function() -> None:
    def handle(x: Any) -> None: ...

    assert wisp.cloudevent(handle) is handle
    assert detect_signature(handle) == "cloudevent"

    @wisp.http()
    def other(event: Any) -> None: ...  # named `event`, but the decorator wins

    assert detect_signature(other) == "http"


def test_undecorated_detection() -> None:
    def by_name(event): ...  # type: ignore[no-untyped-def]
    def by_annotation(e: wisp.CloudEvent) -> None: ...
    def plain(request: Request) -> str: return ""
    async def asgi_fn(scope, receive, send): ...  # type: ignore[no-untyped-def]

    class App:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    assert detect_signature(by_name) == "cloudevent"
    assert detect_signature(by_annotation) == "cloudevent"
    assert detect_signature(plain) == "http"
    assert detect_signature(asgi_fn) == "asgi"
    assert detect_signature(App()) == "asgi"
    assert is_async(App()) and is_async(asgi_fn) and not is_async(plain)


def test_load_target_errors(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mod_for_target.py").write_text("x = 1\ndef f(r): return 'ok'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_target("mod_for_target:f")(None) == "ok"
    with pytest.raises(TargetError, match="has no attribute 'g'"):
        load_target("mod_for_target:g")
    with pytest.raises(TargetError, match="not a callable"):
        load_target("mod_for_target:x")
    with pytest.raises(TargetError, match="module:function"):
        load_target("mod_for_target")


def test_to_response_closed_set() -> None:
    assert to_response("hi").body == b"hi"
    assert to_response("<!DOCTYPE html><p>").headers["content-type"].startswith("text/html")
    assert to_response(b"\x00").media_type == "application/octet-stream"
    assert json.loads(to_response({"a": 1}).body) == {"a": 1}
    assert json.loads(to_response([1]).body) == [1]
    created = to_response(({"id": 7}, 201))
    assert created.status_code == 201 and json.loads(created.body) == {"id": 7}
    teapot = Response("x", status_code=418)
    assert to_response(teapot) is teapot
    with pytest.raises(TypeError, match="got set"):
        to_response({1})


def test_missing_attributes_binary_and_structured() -> None:
    assert missing_attributes({"ce-id": "1", "ce-type": "t"}, b"") == ["source", "specversion"]
    body = json.dumps({"id": "1", "source": "s", "specversion": "1.0"}).encode()
    assert missing_attributes({"content-type": "application/cloudevents+json"}, body) == ["type"]
    with pytest.raises(ValueError, match="not JSON"):
        missing_attributes({"content-type": "application/cloudevents+json"}, b"{")


def test_event_response() -> None:
    assert event_response(None).status_code == 202
    reply = event_response(wisp.CloudEvent({"type": "t.reply", "source": "/s", "id": "r1"}, {"ok": True}))
    assert reply.headers["ce-type"] == "t.reply" and reply.headers["ce-id"] == "r1"
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(bytes(reply.body)) == {"ok": True}
