"""Admission against a real (in-memory) store: cluster ConfigMaps, their effect, all-or-nothing."""

from __future__ import annotations

from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.control.admission import admit, apply_manifests, warnings_for
from wisp.store import Store


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "knative-serving"},
            "data": data}


def ksvc(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": annotations or {}},
                                  "spec": {"containers": [{"image": "./app"}]}}}}


@pytest.fixture
def store() -> Store:
    s = Store(None, lambda: 0.0)
    s.open()
    return s


def test_config_defaults_fill_new_templates(store: Store) -> None:
    store.apply(admit([config_map("config-defaults", {"revision-timeout-seconds": "120",
                                                      "container-concurrency": "7"})], store))
    [(_, svc)] = admit([ksvc("timed")], store)
    spec = svc["spec"]["template"]["spec"]
    assert (spec["timeoutSeconds"], spec["containerConcurrency"]) == (120, 7)


def test_config_in_the_same_batch_judges_later_documents(store: Store) -> None:
    with pytest.raises(ManifestError, match="initial-scale"):
        admit([ksvc("cold", {"autoscaling.knative.dev/initial-scale": "0"})], store)
    batch = [config_map("config-autoscaler", {"allow-zero-initial-scale": "true"}),
             ksvc("cold", {"autoscaling.knative.dev/initial-scale": "0"})]
    assert len(admit(batch, store)) == 2


@pytest.mark.parametrize(("name", "data", "field"), [
    ("config-autoscaler", {"stable-window": "2s"}, "data[stable-window]"),
    ("config-autoscaler", {"max-scale-down-rate": "0.5"}, "data[max-scale-down-rate]"),
    ("config-defaults", {"revision-timeout-seconds": "-1"}, "data[revision-timeout-seconds]"),
])
def test_bad_cluster_config_is_refused_and_the_old_one_stays(
    store: Store, name: str, data: dict[str, str], field: str
) -> None:
    apply_manifests([config_map(name, {})], store)
    with pytest.raises(ManifestError) as caught:
        admit([config_map(name, data)], store)
    assert any(e.path == field for e in caught.value.errors), caught.value.errors
    assert store.get(k.CONFIG_MAP, "knative-serving", name)["data"] == {}  # type: ignore[index]


def test_seed_annotations_that_mean_nothing_here_are_reported() -> None:
    svc = ksvc("page", {"fc.revision.serving.knative.aliyun.com/role-arm": "acs:ram::1:role/x",
                        "fc.revision.serving.knative.aliyun.com/code-space": "image"})
    warnings = warnings_for(svc)
    assert len(warnings) == 2 and all("ignored" in w for w in warnings)
    assert warnings_for(ksvc("plain")) == []


def test_a_cesql_filter_that_does_not_parse_is_refused(store: Store) -> None:
    trigger = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
               "spec": {"broker": "default", "filters": [{"cesql": "type = 'a' AND AND source = 'b'"}],
                        "subscriber": {"uri": "http://example.com/"}}}
    with pytest.raises(ManifestError) as caught:
        admit([trigger], store)
    assert caught.value.errors[0].path == "spec.filters[0].cesql"
    assert "position" in caught.value.errors[0].message
