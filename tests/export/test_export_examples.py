"""Every example (and the test apps) exported: what a Knative cluster takes, and nothing of this machine."""

from __future__ import annotations

import time
from pathlib import Path

from tests.export.conftest import APPS, DOMAIN, EXAMPLES, KAFKA, REGISTRY, read_export
from wisp.api import kinds
from wisp.export import checks, openapi
from wisp.export.export import export, plan
from wisp.export.options import ExportOptions

OPTIONS = ExportOptions.parse(REGISTRY, KAFKA, DOMAIN, None, [])


def test_every_example_exports_to_documents_knative_accepts(tmp_path: Path, project: Path) -> None:
    out = tmp_path / "out"
    started = time.perf_counter()
    result = export([*EXAMPLES, APPS / "events", APPS / "translations", project], out, OPTIONS)
    print(f"exported {len(result.files)} files, {len(result.contexts)} build contexts "
          f"in {time.perf_counter() - started:.2f}s")
    files = read_export(out)
    assert set(files) == {"10-process.yaml", "20-kafkasource.yaml", "30-homepage.yaml", "hello.yaml",
                          "events.yaml", "everything.yaml", "greeter.yaml", "0-namespaces.yaml"}
    # kubectl applies files in name order: the namespace `shop` is created before what lives in it.
    assert files["0-namespaces.yaml"] == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]
    assert sorted(files)[0] == "0-namespaces.yaml"
    for name, docs in files.items():
        for doc in docs:
            assert checks.problems(doc) == [], (name, doc["kind"])
            kind = kinds.for_manifest(doc["apiVersion"], doc["kind"])
            assert doc["apiVersion"].rpartition("/")[2] in openapi.served_versions(kind)
    texts = "".join(p.read_text() for p in out.iterdir() if p.suffix == ".yaml")
    for leftover in ("localhost", "127.0.0.1", "wisp.dev/", "image: ./", "image: ../", "v1alpha1", "aliyun.com/class"):
        assert leftover not in texts, leftover
    images = [c["image"] for docs in files.values() for d in docs if d["kind"] == "Service"
              for c in d["spec"]["template"]["spec"]["containers"]]
    assert images and all(i.startswith(REGISTRY + "/") for i in images)
    assert {c.image for c in result.contexts} == set(images)


def test_the_seed_kafka_source_becomes_v1_with_delivery(tmp_path: Path) -> None:
    export([EXAMPLES[0]], tmp_path / "out", OPTIONS)
    [source] = read_export(tmp_path / "out")["20-kafkasource.yaml"]
    assert source["apiVersion"] == "sources.knative.dev/v1"
    spec = source["spec"]
    assert spec["bootstrapServers"] == [KAFKA] and spec["topics"] == ["barrage-info"]
    assert spec["sink"] == {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                    "name": "test-barrage-process", "namespace": "default"}}
    assert spec["delivery"] == {"timeout": "PT60S", "retry": 5}
    # A fixed wait between retries has no Knative field: it stays, and the notes say so.
    assert source["metadata"]["annotations"] == {"k8s.aliyun.com/retry-interval": "2"}
    assert "retry-interval" in (tmp_path / "out" / "NOTES.md").read_text()


def test_the_homepage_gets_its_domain_mapping_and_the_cluster_kafka(tmp_path: Path) -> None:
    export([EXAMPLES[0]], tmp_path / "out", OPTIONS)
    service, mapping = read_export(tmp_path / "out")["30-homepage.yaml"]
    template = service["spec"]["template"]
    assert "fc.revision.serving.knative.aliyun.com/domain" not in template["metadata"]["annotations"]
    assert "annotations" not in service["metadata"]  # the seed's workload class went into the image
    env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
    assert env["KAFKA_SERVER"]["value"] == KAFKA
    assert env["KAFKA_PWD"] == {"name": "KAFKA_PWD", "valueFrom": {"secretKeyRef": {"name": "barrage-kafka",
                                                                                    "key": "KAFKA_PWD"}}}
    assert mapping == {"apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping",
                       "metadata": {"name": "barrage.demo." + DOMAIN, "namespace": "default"},
                       "spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                        "name": "demo-barrage"}}}


def test_addresses_through_the_ingress_become_cluster_addresses(tmp_path: Path) -> None:
    export([APPS / "translations"], tmp_path / "out", OPTIONS)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in read_export(tmp_path / "out")["everything.yaml"]}
    broker = "http://broker-ingress.knative-eventing.svc.cluster.local/shop/default"
    assert docs["ConfigMap", "settings"]["data"] == {
        "ORDERS_URL": "http://orders.shop.svc.cluster.local/api", "BROKER": broker, "PLAIN": "hello"}
    assert docs["SinkBinding", "bind"]["spec"]["sink"] == {"uri": broker}
    trigger = docs["Trigger", "to-orders"]["spec"]
    assert trigger["subscriber"] == {"uri": "http://orders.shop.svc.cluster.local/events"}
    assert trigger["delivery"]["deadLetterSink"] == {"uri": f"http://shop.example.{DOMAIN}/dead"}
    assert ("DomainMapping", f"shop.example.{DOMAIN}") in docs
    env = {e["name"]: e.get("value") for e in
           docs["Service", "orders"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["K_SINK_DIRECT"] == broker and env["KAFKA"] == KAFKA and env["HOST"] == "0.0.0.0"
    assert "labels" not in docs["Service", "orders"]["metadata"]
    assert "annotations" not in docs["Broker", "default"]["metadata"]


def test_secrets_are_named_never_valued(tmp_path: Path) -> None:
    export([APPS / "translations"], tmp_path / "out", OPTIONS)
    written = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "s3cr3t-value" not in written and "another-secret" not in written
    assert not any(d["kind"] == "Secret" for docs in read_export(tmp_path / "out").values() for d in docs)
    hints = (tmp_path / "out" / "secrets.txt").read_text()
    assert "kubectl create secret generic api-keys --from-literal=API_KEY=<API_KEY> " \
           "--from-literal=OTHER=<OTHER>" in hints


def test_build_contexts_hold_the_code_its_local_imports_and_the_runtime(tmp_path: Path) -> None:
    result = export(EXAMPLES, tmp_path / "out", OPTIONS)
    contexts = {c.name: c for c in result.contexts}
    assert {n: c.workload for n, c in contexts.items()} == {
        "test-barrage-process": "container", "demo-barrage": "function", "hello": "function",
        "hello-container": "container"}
    home = tmp_path / "out" / "build" / "demo-barrage"
    # homepage/ imports barrage_table and barrage_tracing from its parent directory: the image has them there.
    for path in ("app/homepage/main.py", "app/barrage_table/__init__.py", "app/barrage_tracing.py",
                 "runtime/wisp_serve.py", "runtime/wisp/serving/workloads/function_app.py", "Containerfile"):
        assert (home / path).is_file(), path
    assert not (home / "app" / "processor").exists()  # another app's code is not this image's
    assert "WORKDIR /app/homepage" in (home / "Containerfile").read_text()
    assert contexts["demo-barrage"].signature == "asgi" and contexts["hello"].signature == "http"
    # Runtime modules are wisp's own files, byte for byte: the image runs the same function runtime.
    repo_runtime = Path(__file__).resolve().parents[2] / "src" / "wisp" / "serving" / "workloads" / "function_app.py"
    assert (home / "runtime/wisp/serving/workloads/function_app.py").read_bytes() == repo_runtime.read_bytes()
    # Without a requirements file, the imports say what to install, pinned to what wisp ran it with.
    assert contexts["hello"].requirements_source == "inferred"
    assert contexts["demo-barrage"].requirements_source == "requirements.txt"
    processor = (tmp_path / "out" / "build" / "test-barrage-process" / "Containerfile").read_text()
    assert 'CMD ["python", "app.py"]' in processor and "WORKDIR /app/processor" in processor


def test_tags_are_content_hashes(tmp_path: Path) -> None:
    code = tmp_path / "app" / "fn"
    code.mkdir(parents=True)
    (code / "main.py").write_text("def handle(request):\n    return 'one'\n")
    manifest = tmp_path / "app" / "fn.yaml"
    manifest.write_text("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: fn}\nspec:\n"
                        "  template:\n    metadata:\n      annotations: {wisp.dev/workload-class: function}\n"
                        "    spec:\n      containers: [{image: ./fn}]\n")
    first = plan([manifest], OPTIONS).contexts[0].image
    assert first == plan([manifest], OPTIONS).contexts[0].image
    (code / "main.py").write_text("def handle(request):\n    return 'two'\n")
    second = plan([manifest], OPTIONS).contexts[0].image
    assert first != second and first.rpartition(":")[0] == second.rpartition(":")[0] == f"{REGISTRY}/fn"
    tagged = plan([manifest], ExportOptions.parse(REGISTRY, None, None, "v1.2", [])).contexts[0].image
    assert tagged == f"{REGISTRY}/fn:v1.2"


def test_env_overrides_replace_values_wherever_they_are_set(tmp_path: Path) -> None:
    options = ExportOptions.parse(REGISTRY, KAFKA, DOMAIN, None, ["TABLE_URL=postgresql://db.prod/barrage"])
    export([EXAMPLES[0]], tmp_path / "out", options)
    files = read_export(tmp_path / "out")
    for name in ("10-process.yaml", "30-homepage.yaml"):
        env = {e["name"]: e.get("value") for e in files[name][0]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["TABLE_URL"] == "postgresql://db.prod/barrage"


def test_a_registry_on_localhost_is_the_nodes_own(tmp_path: Path) -> None:
    # kind's local registry is localhost:5001 from the nodes' point of view: image references may name it.
    result = export([EXAMPLES[1]], tmp_path / "out", ExportOptions.parse("localhost:5001", None, None, None, []))
    assert {c.image.rpartition(":")[0] for c in result.contexts} == {"localhost:5001/hello",
                                                                       "localhost:5001/hello-container"}
