"""Bad channels, subscriptions and flows are refused as Knative's webhooks refuse them, naming the field;
a batch with one bad document writes nothing; default-ch-webhook picks the channel template."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.control.admission import admit, apply_manifests
from wisp.store import Store

from .helpers import IMC, imc, subscription

SINK = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "step"}}


@pytest.fixture
def store() -> Store:
    s = Store(None, lambda: 0.0)
    s.open()
    return s


def sequence(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "metadata": {"name": "seq"},
            "spec": {"channelTemplate": dict(IMC), "steps": [SINK], **spec}}


def parallel(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "flows.knative.dev/v1", "kind": "Parallel", "metadata": {"name": "par"},
            "spec": {"channelTemplate": dict(IMC), "branches": [{"subscriber": SINK}], **spec}}


def refused_paths(store: Store, *docs: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        apply_manifests(list(docs), store)
    return [e.path for e in caught.value.errors]


@pytest.mark.parametrize(("doc", "path"), [
    (sequence(steps=[]), "spec.steps"),
    ({**sequence(), "spec": {"channelTemplate": dict(IMC)}}, "spec.steps"),
    (sequence(channelTemplate={"apiVersion": "messaging.knative.dev/v1", "kind": "RabbitChannel"}),
     "spec.channelTemplate.kind"),
    (sequence(channelTemplate={"apiVersion": "messaging.knative.dev/v2", "kind": "InMemoryChannel"}),
     "spec.channelTemplate.apiVersion"),
    (sequence(channelTemplate={"kind": "InMemoryChannel"}), "spec.channelTemplate.apiVersion"),
    (sequence(steps=[{"uri": "relative/path"}]), "spec.steps[0].uri"),
    (sequence(steps=[SINK, {**SINK, "delivery": {"retry": -1}}]), "spec.steps[1].delivery.retry"),
    (sequence(reply={}), "spec.reply"),
    (sequence(steps=[SINK] * 101), "spec.steps"),
    (parallel(branches=[]), "spec.branches"),
    (parallel(branches=[{"filter": SINK}]), "spec.branches[0].subscriber"),
    (parallel(branches=[{"subscriber": SINK, "reply": {"ref": {"kind": "Service"}}}]),
     "spec.branches[0].reply.ref.name"),
    (parallel(channelTemplate={"apiVersion": "messaging.knative.dev/v1", "kind": "Channel"}),
     "spec.channelTemplate.kind"),
    ({**subscription("s", "c", SINK), "spec": {"subscriber": SINK}}, "spec.channel"),
    (subscription("s", "c", None), "spec.subscriber"),
    ({**subscription("s", "c", SINK), "spec": {**subscription("s", "c", SINK)["spec"],
                                               "channel": {"apiVersion": "messaging.knative.dev/v1",
                                                           "kind": "InMemoryChannel", "name": "c",
                                                           "namespace": "other"}}}, "spec.channel.namespace"),
    ({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
      "spec": {"channelTemplate": {"apiVersion": "messaging.knative.dev/v1", "kind": "Widget"}}},
     "spec.channelTemplate.kind"),
    ({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
      "spec": {"subscribers": [{"subscriberUri": "http://a/"}]}}, "spec.subscribers"),
    ({**imc("c"), "spec": {"subscribers": [{"uid": "x"}]}}, "spec.subscribers[0]"),
    ({**imc("c", **{"eventing.knative.dev/scope": "galaxy"})}, "metadata.annotations[eventing.knative.dev/scope]"),
])
def test_refused_with_the_field_path(store: Store, doc: dict[str, Any], path: str) -> None:
    assert path in refused_paths(store, doc)


def test_nothing_of_a_refused_batch_is_written(store: Store) -> None:
    refused_paths(store, imc("ok"), sequence(steps=[]))
    assert store.list(k.IN_MEMORY_CHANNEL) == [] and store.list(k.SEQUENCE) == []


def test_a_subscription_to_a_missing_channel_is_accepted(store: Store) -> None:
    [result] = apply_manifests([subscription("s", "nowhere", SINK)], store)
    assert result.action == "created"


def test_immutable_fields(store: Store) -> None:
    apply_manifests([subscription("s", "a", SINK),
                     {"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"}}], store)
    assert refused_paths(store, subscription("s", "b", SINK)) == ["spec.channel"]
    # The subscriber, reply and delivery may change.
    apply_manifests([subscription("s", "a", {"uri": "http://elsewhere.example/"}, reply=SINK)], store)
    changed = {"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
               "spec": {"delivery": {"retry": 3}}}
    assert refused_paths(store, changed) == ["spec.delivery"]


def test_default_ch_webhook_picks_the_template_per_namespace(store: Store) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "default-ch-webhook", "namespace": "knative-eventing"},
              "data": {"default-ch-config": "clusterDefault:\n  apiVersion: messaging.knative.dev/v1\n"
                                            "  kind: InMemoryChannel\n  spec:\n    delivery:\n      retry: 4\n"
                                            "namespaceDefaults:\n  quiet:\n    apiVersion: messaging.knative.dev/v1\n"
                                            "    kind: InMemoryChannel\n"}}
    apply_manifests([config], store)
    [(_, loud)] = admit([{"apiVersion": "messaging.knative.dev/v1", "kind": "Channel",
                          "metadata": {"name": "c"}}], store)
    assert loud["spec"]["channelTemplate"]["spec"] == {"delivery": {"retry": 4}}
    [(_, quiet)] = admit([{**sequence(), "metadata": {"name": "s", "namespace": "quiet"},
                           "spec": {"steps": [SINK]}}], store)
    assert quiet["spec"]["channelTemplate"] == {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
    bad = copy.deepcopy(config)
    bad["data"]["default-ch-config"] = "clusterDefault: [1, 2]"
    assert refused_paths(store, bad) == ["data[default-ch-config].clusterDefault"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["steps", "channelTemplate", "reply", "branches"]), value=_JSON,
       kind=st.sampled_from(["Sequence", "Parallel"]))
def test_hostile_specs_are_refused_or_admitted_never_crash(field: str, value: Any, kind: str) -> None:
    store = Store(None, lambda: 0.0)
    store.open()
    doc = sequence() if kind == "Sequence" else parallel()
    doc["spec"][field] = value
    try:
        apply_manifests([doc], store)
    except ManifestError as exc:
        assert exc.errors and all(e.path for e in exc.errors)
    finally:
        store.close()
