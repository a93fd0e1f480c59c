"""The protobuf bodies kubectl's typed clients send for core kinds, decoded to their JSON form; anything else
is a 400 (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp.control.k8s_protobuf import MAGIC, decode
from wisp.control.refusal import Refused


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(kind: str, raw: bytes, api_version: str = "v1") -> bytes:
    return MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_a_config_map_as_kubectl_create_sends_it() -> None:
    meta = field(1, "settings") + field(3, "team") + entry(11, "app", "web")
    raw = field(1, meta) + entry(2, "greeting", "hello") + entry(3, "blob", b"\x00\x01") + field(4, 1)
    assert decode(envelope("ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "team", "labels": {"app": "web"}},
        "data": {"greeting": "hello"}, "binaryData": {"blob": "AAE="}, "immutable": True}


def test_a_secret_keeps_its_bytes_as_base64_and_a_namespace_its_finalizers() -> None:
    secret = decode(envelope("Secret", field(1, field(1, "creds")) + entry(2, "token", b"s3cr3t") +
                             field(3, "Opaque")))
    assert secret["data"] == {"token": "czNjcjN0"} and secret["type"] == "Opaque"
    namespace = decode(envelope("Namespace", field(1, field(1, "team")) + field(2, field(1, "kubernetes"))))
    assert namespace == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"},
                         "spec": {"finalizers": ["kubernetes"]}}


@pytest.mark.parametrize("body", [b"", b"{}", MAGIC + b"\xff", envelope("Pod", b""),
                                  envelope("ConfigMap", b"", api_version="v2"), envelope("ConfigMap", b"\x0a\x05ab")])
def test_what_is_not_a_core_kind_in_protobuf_is_refused(body: bytes) -> None:
    with pytest.raises(Refused) as refused:
        decode(body)
    assert refused.value.code == 400


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=200), kind=st.sampled_from(["ConfigMap", "Secret", "Namespace"]))
def test_any_bytes_decode_or_are_refused(raw: bytes, kind: str) -> None:
    try:
        out = decode(envelope(kind, raw))
    except Refused as refused:
        assert refused.code == 400
    else:
        assert out["kind"] == kind and isinstance(out["metadata"], dict)
