"""Reading manifests from text, files and directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from wisp.api.errors import ManifestError
from wisp.api.loader import load_paths, load_text
from wisp.api.names import MANIFEST_DIR_ANNOTATION

SERVICE = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - image: {image}
"""


def test_multi_document_text_skips_empty_documents(tmp_path: Path) -> None:
    text = (
        "---\n"
        + SERVICE.format(name="a", image="ghcr.io/x/y")
        + "---\n---\n"
        + SERVICE.format(name="b", image="ghcr.io/x/z")
    )
    docs = load_text(text, "inline.yaml", directory=tmp_path)
    assert [d.resource["metadata"]["name"] for d in docs] == ["a", "b"]
    assert [d.index for d in docs] == [0, 2]  # the document between two `---` is empty
    assert all(d.source == "inline.yaml" and d.directory == tmp_path.resolve() for d in docs)


def test_directories_are_read_recursively_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yaml").write_text(SERVICE.format(name="b", image="x"))
    (tmp_path / "a.yml").write_text(SERVICE.format(name="a", image="x"))
    (tmp_path / "sub" / "c.yaml").write_text(SERVICE.format(name="c", image="x"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    docs = load_paths([tmp_path])
    assert [d.resource["metadata"]["name"] for d in docs] == ["a", "b", "c"]
    assert docs[2].source == str(tmp_path / "sub" / "c.yaml")


def test_local_image_records_the_manifest_directory(tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE.format(name="a", image="./processor"))
    (doc,) = load_paths([tmp_path / "svc.yaml"])
    assert doc.resource["metadata"]["annotations"][MANIFEST_DIR_ANNOTATION] == str(tmp_path.resolve())
    assert doc.directory == tmp_path.resolve()


@pytest.mark.parametrize("image", ["./app", "../app", "/srv/app"])
def test_each_local_image_form_is_recognised(image: str, tmp_path: Path) -> None:
    (doc,) = load_text(SERVICE.format(name="a", image=image), directory=tmp_path)
    assert MANIFEST_DIR_ANNOTATION in doc.resource["metadata"]["annotations"]


def test_registry_image_gets_no_manifest_directory(tmp_path: Path) -> None:
    (doc,) = load_text(SERVICE.format(name="a", image="ghcr.io/knative/helloworld-go"), directory=tmp_path)
    assert "annotations" not in doc.resource["metadata"]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(ManifestError) as info:
        load_paths([path])
    assert info.value.where.startswith(f"{path}:")
    line = int(info.value.where.split(":")[1])
    assert line in (4, 5)  # the flow sequence opens on line 4 and the parser notices at the end
    assert "invalid YAML" in str(info.value)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", "metadata"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", "metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n", "metadata.generateName"),
        (
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {}\n",
            "items[0].metadata.name",
        ),
    ],
)
def test_missing_identity_fields_are_named(text: str, path: str) -> None:
    with pytest.raises(ManifestError) as info:
        load_text(text, "m.yaml")
    assert [e.path for e in info.value.errors] == [path]
    assert info.value.where == "m.yaml (document 0)"


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(ManifestError) as info:
        load_text("- just\n- a list\n", "m.yaml")
    assert "must be a mapping" in str(info.value)


def test_list_kind_is_expanded() -> None:
    text = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one}
  - apiVersion: v1
    kind: Secret
    metadata: {name: two}
"""
    docs = load_text(text)
    assert [(d.resource["kind"], d.resource["metadata"]["name"]) for d in docs] == [
        ("ConfigMap", "one"),
        ("Secret", "two"),
    ]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_paths([tmp_path / "absent.yaml"])
