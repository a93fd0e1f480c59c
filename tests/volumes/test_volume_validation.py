"""Knative's volume rules at admission, and hostile volume specs: a list of field errors, never an exception;
what passes admission either becomes volume files or a clear VolumeError naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wisp.api.defaults import apply_defaults
from wisp.api.validation import validate
from wisp.control.volume_builder import VolumeError, volume_specs
from wisp.types import Resource


def service(volumes: list[Any], mounts: list[Any]) -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "v", "namespace": "default"},
            "spec": {"template": {"spec": {"volumes": volumes,
                                           "containers": [{"image": "./app", "command": ["run"],
                                                           "volumeMounts": mounts}]}}}}


def errors(volumes: list[Any], mounts: list[Any]) -> list[str]:
    return [str(e) for e in validate(apply_defaults(service(volumes, mounts)))]


CM = {"name": "cfg", "configMap": {"name": "settings"}}


@pytest.mark.parametrize(("volumes", "mounts", "expected"), [
    ([CM], [{"name": "cfg", "mountPath": "/"}], 'mountPath "/" is a reserved path'),
    ([CM], [{"name": "cfg", "mountPath": "/dev/log/"}], 'mountPath "/dev/log" is a reserved path'),
    ([CM, {"name": "other", "secret": {"secretName": "s"}}], [{"name": "cfg", "mountPath": "/a"}],
     'volume with name "other" not mounted'),
    ([CM], [{"name": "cfg", "mountPath": "/a"}, {"name": "cfg", "mountPath": "/a/"}], "must be unique"),
    ([{"name": "Bad_Name", "emptyDir": {}}], [{"name": "Bad_Name", "mountPath": "/a"}], "volumes[0].name"),
    ([{"name": "e", "emptyDir": {"medium": "Disk"}}], [{"name": "e", "mountPath": "/a"}], 'must be "" or Memory'),
    ([{"name": "e", "emptyDir": {"sizeLimit": "lots"}}], [{"name": "e", "mountPath": "/a"}], "sizeLimit"),
    ([{"name": "c", "configMap": {"name": "x", "items": [{"key": "k", "path": "../up"}]}}],
     [{"name": "c", "mountPath": "/a"}], "must be a relative path without '..'"),
    ([{"name": "c", "configMap": {"name": "x", "items": [{"key": "k"}]}}], [{"name": "c", "mountPath": "/a"}],
     "items[0].path"),
])
def test_knative_volume_rules(volumes: list[Any], mounts: list[Any], expected: str) -> None:
    found = errors(volumes, mounts)
    assert any(expected in e for e in found), found


def test_mounts_of_secrets_and_config_maps_are_made_read_only() -> None:
    defaulted = apply_defaults(service([CM, {"name": "e", "emptyDir": {}}],
                                       [{"name": "cfg", "mountPath": "/a", "readOnly": False},
                                        {"name": "e", "mountPath": "/b"}]))
    mounts = defaulted["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m.get("readOnly") for m in mounts] == [True, None]
    assert validate(defaulted) == []


names = st.sampled_from(["cfg", "e", "s", "p", "Bad", ""])
paths = st.one_of(st.sampled_from(["/a", "/a/b", "/", "/dev", "rel", "/a/../b", ""]), st.text(max_size=12))
items = st.lists(st.fixed_dictionaries({}, optional={"key": st.text(max_size=5), "path": paths,
                                                       "mode": st.integers(-5, 5000)}), max_size=3)
sources = st.one_of(
    st.fixed_dictionaries({"configMap": st.fixed_dictionaries({"name": st.text(max_size=5)},
                                                              optional={"items": items, "optional": st.booleans()})}),
    st.fixed_dictionaries({"secret": st.fixed_dictionaries({}, optional={"secretName": st.text(max_size=5),
                                                                          "items": items})}),
    st.fixed_dictionaries({"emptyDir": st.fixed_dictionaries({}, optional={
        "sizeLimit": st.one_of(st.text(max_size=6), st.integers(-10, 10**12)), "medium": st.text(max_size=6)})}),
    st.fixed_dictionaries({"projected": st.fixed_dictionaries({}, optional={"sources": st.lists(
        st.dictionaries(st.sampled_from(["configMap", "secret", "downwardAPI", "serviceAccountToken"]),
                        st.fixed_dictionaries({}, optional={"name": st.text(max_size=4), "items": items}),
                        max_size=2), max_size=3)})}),
)
volume = st.builds(lambda name, source: {"name": name, **source}, names, sources)
mount = st.fixed_dictionaries({"name": names, "mountPath": paths},
                              optional={"readOnly": st.booleans(), "subPath": paths})


def lookup(namespace: str, name: str) -> Resource | None:
    return {"data": {"k": "v"}, "stringData": {"k": "v"}} if name else None


@settings(max_examples=300, deadline=None)
@given(st.lists(volume, max_size=4), st.lists(mount, max_size=4))
def test_hostile_volumes_are_refused_with_field_errors_or_built(volumes: list[Any], mounts: list[Any]) -> None:
    resource = apply_defaults(service(copy.deepcopy(volumes), copy.deepcopy(mounts)))
    found = validate(resource)
    assert all(e.path for e in found)
    if found:
        return
    template = resource["spec"]["template"]
    revision = {"metadata": {"name": "v-00001", "namespace": "default"}, "spec": template["spec"]}
    try:
        built, made_mounts = volume_specs(revision, lookup, lookup)
    except VolumeError as exc:
        assert str(exc).startswith(("spec.volumes[", "spec.containers[0].volumeMounts[")), str(exc)
        return
    for v in built:
        for f in v.files:
            assert not f.path.startswith("/") and ".." not in f.path.split("/")
    assert all(m.mount_path.startswith("/") for m in made_mounts)
