"""A KafkaSource's connection security (Knative's `net.sasl` / `net.tls`) with its Secret references read."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.eventing.kafka_source import KafkaAuth
from wisp.store import Store


def secret_value(store: Store, namespace: str, ref: Mapping[str, Any] | None) -> str | None:
    """The value a `{secretKeyRef: {name, key}}` names, None when no reference is given; a missing Secret or
    key raises ManifestError (the source reports it as InvalidSpec and is reconciled again when Secrets change)."""
    key_ref = (ref or {}).get("secretKeyRef") if isinstance(ref, Mapping) else None
    if not isinstance(key_ref, Mapping):
        return None
    secret = store.get(k.SECRET, namespace, str(key_ref.get("name", "")))
    if secret is None:
        raise ManifestError([], f'secret "{key_ref.get("name")}" not found')
    key = str(key_ref.get("key", ""))
    if key in (secret.get("data") or {}):
        return base64.b64decode(secret["data"][key]).decode()
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raise ManifestError([], f'key "{key}" not found in secret "{key_ref.get("name")}"')


def kafka_auth(store: Store, namespace: str, net: Mapping[str, Any] | None) -> KafkaAuth:
    """Knative's `net.sasl` / `net.tls` with every secret reference resolved."""
    net = net or {}
    sasl = net.get("sasl") or {}
    tls = net.get("tls") or {}
    return KafkaAuth(
        sasl_enabled=bool(sasl.get("enable")),
        sasl_mechanism=secret_value(store, namespace, sasl.get("type")) or "PLAIN",
        sasl_user=secret_value(store, namespace, sasl.get("user")),
        sasl_password=secret_value(store, namespace, sasl.get("password")),
        tls_enabled=bool(tls.get("enable")),
        ca_cert=secret_value(store, namespace, tls.get("caCert")),
        client_cert=secret_value(store, namespace, tls.get("cert")),
        client_key=secret_value(store, namespace, tls.get("key")),
    )
