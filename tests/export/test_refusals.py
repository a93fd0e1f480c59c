"""What bad input gets: a refusal naming the document and field path, and no output directory at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.conftest import DOMAIN, EXAMPLES, KAFKA, REGISTRY, read_export
from wisp.api.errors import ManifestError
from wisp.export.context import BuildContext
from wisp.export.export import ExportError, Plan, export, write
from wisp.export.options import ExportOptions, OptionError

OPTIONS = ExportOptions.parse(REGISTRY, KAFKA, DOMAIN, None, [])


def _function(tmp_path: Path, main: str, name: str = "fn", extra: str = "") -> Path:
    code = tmp_path / "src" / name
    code.mkdir(parents=True)
    (code / "main.py").write_text(main)
    manifest = tmp_path / "src" / f"{name}.yaml"
    manifest.write_text(f"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
                        "  template:\n    metadata:\n      annotations: {wisp.dev/workload-class: function}\n"
                        f"    spec:\n      containers: [{{image: ./{name}{extra}}}]\n")
    return manifest


def test_a_local_image_without_registry_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ManifestError) as caught:
        export(EXAMPLES, out, ExportOptions.parse(None, KAFKA, DOMAIN, None, []))
    assert "10-process.yaml (document 0)" in caught.value.where
    assert caught.value.errors[0].path == "spec.template.spec.containers[0].image"
    assert "--registry" in caught.value.errors[0].message
    assert not out.exists()


@pytest.mark.parametrize("main, reason", [
    ("import no_such_module_anywhere\ndef handle(request):\n    return 'x'\n", "No module named"),
    ("def handle(request)\n    return 'x'\n", "SyntaxError"),
    ("raise RuntimeError('boom at import')\n", "boom at import"),
    ("handler = 1\n", "no attribute 'handle'"),
])
def test_a_function_whose_entry_point_does_not_import_is_refused(tmp_path: Path, main: str, reason: str) -> None:
    manifest = _function(tmp_path, main)
    out = tmp_path / "out"
    with pytest.raises(ManifestError) as caught:
        export([manifest], out, OPTIONS)
    [error] = caught.value.errors
    assert error.path == "spec.template.spec.containers[0].image" and reason in error.message
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_a_manifest_knative_would_not_accept_is_refused_with_its_path(tmp_path: Path) -> None:
    # wisp takes the fields older KafkaSource versions had (spec.selector); Knative's v1 CRD does not.
    manifest = tmp_path / "source.yaml"
    manifest.write_text("apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: s}\nspec:\n"
                        "  bootstrapServers: [kafka.prod:9092]\n  topics: [t]\n  consumerGroup: g\n"
                        "  selector: {matchLabels: {a: b}}\n"
                        "  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: x}}\n")
    with pytest.raises(ExportError) as caught:
        export([manifest], tmp_path / "out", OPTIONS)
    assert "source.yaml (document 0): exported KafkaSource/s" in str(caught.value)
    assert [e.path for e in caught.value.errors] == ["spec.selector"]
    assert not (tmp_path / "out").exists()


def test_this_machine_left_in_a_value_is_refused(tmp_path: Path) -> None:
    manifest = _function(tmp_path, "def handle(request):\n    return 'x'\n",
                         extra=", env: [{name: DB, value: 'postgresql://127.0.0.1:5432/app'}]")
    with pytest.raises(ManifestError) as caught:
        export([manifest], tmp_path / "out", OPTIONS)
    assert caught.value.errors[0].path == "spec.template.spec.containers[0].env[0].value"
    assert "--env" in caught.value.errors[0].message
    # ... and --env gives the cluster's value.
    options = ExportOptions.parse(REGISTRY, KAFKA, DOMAIN, None, ["DB=postgresql://db.prod:5432/app"])
    export([manifest], tmp_path / "out", options)
    [service] = read_export(tmp_path / "out")["fn.yaml"]
    assert service["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "DB", "value": "postgresql://db.prod:5432/app"}]


def test_local_kafka_and_localhost_domains_need_their_options(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        export([EXAMPLES[0] / "20-kafkasource.yaml"], tmp_path / "out", ExportOptions.parse(REGISTRY, None, None,
                                                                                            None, []))
    assert [e.path for e in caught.value.errors] == ["spec.bootstrapServers"]
    with pytest.raises(ManifestError) as caught:
        export([EXAMPLES[0]], tmp_path / "out", ExportOptions.parse(REGISTRY, KAFKA, None, None, []))
    assert caught.value.errors[0].path == \
        "metadata.annotations[fc.revision.serving.knative.aliyun.com/domain]"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, option", [
    (("Registry.Example", None, None, None, []), "--registry"),
    ((REGISTRY, "127.0.0.1:9092", None, None, []), "--kafka"),
    ((REGISTRY, "nonsense", None, None, []), "--kafka"),
    ((REGISTRY, None, "demo.localhost", None, []), "--domain"),
    ((REGISTRY, None, None, "-bad", []), "--tag"),
    ((REGISTRY, None, None, None, ["NOEQUALS"]), "--env"),
])
def test_bad_options_are_named(args: tuple, option: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(OptionError, match=option):
        ExportOptions.parse(*args)


def test_an_existing_directory_that_is_no_export_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an earlier wisp export"):
        export(EXAMPLES, out, OPTIONS)
    assert [p.name for p in out.iterdir()] == ["precious.txt"]


def test_an_earlier_export_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(EXAMPLES, out, OPTIONS)
    (out / "stale.yaml").write_text("kind: Stale\n")
    export([EXAMPLES[1]], out, OPTIONS)
    assert set(read_export(out)) == {"hello.yaml"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or old copies left beside it


def test_a_failure_while_writing_leaves_nothing(tmp_path: Path) -> None:
    broken = BuildContext("x", tmp_path, "container", files={"Containerfile": b"FROM x\n", "Containerfile/y": b""})
    with pytest.raises(OSError):
        write(Plan(files={"a.yaml": [{"kind": "ConfigMap"}]}, contexts=[broken]), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_what_wisp_would_refuse_is_refused_before_translation(tmp_path: Path) -> None:
    manifest = tmp_path / "source.yaml"
    manifest.write_text("apiVersion: sources.knative.dev/v1alpha1\nkind: KafkaSource\nmetadata:\n  name: s\n"
                        "  annotations: {k8s.aliyun.com/req-timeout: soon}\nspec:\n"
                        "  bootstrapServers: kafka.prod:9092\n"
                        "  topics: t\n  consumerGroup: g\n  sink: {apiVersion: serving.knative.dev/v1, kind: Service, "
                        "name: x}\n")
    with pytest.raises(ManifestError) as caught:
        export([manifest], tmp_path / "out", OPTIONS)
    assert [e.path for e in caught.value.errors] == ["metadata.annotations[k8s.aliyun.com/req-timeout]"]
    assert not (tmp_path / "out").exists()
