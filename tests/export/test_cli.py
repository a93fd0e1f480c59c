"""`wisp export` and `wisp build` as a user runs them: the installed command, its messages and exit codes;
`--apply` hands the manifests to kubectl, here pointed at a wisp daemon standing in for the cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.export.conftest import APPS, DOMAIN, EXAMPLES, KAFKA, REGISTRY
from tests.k8s_api.read_side import kubectl_path, running_daemon

WISP = Path(sys.executable).parent / "wisp"


def wisp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WISP), *args], capture_output=True, text=True, timeout=300, check=False,
                          env=env if env is not None else dict(os.environ))


def test_export_prints_what_it_wrote_and_how_long_it_took(tmp_path: Path) -> None:
    done = wisp("export", *map(str, EXAMPLES), "-o", str(tmp_path / "out"), "--registry", REGISTRY, "--kafka", KAFKA,
                "--domain", DOMAIN)
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'out' / '20-kafkasource.yaml'}" in done.stdout
    assert f"→ {REGISTRY}/demo-barrage:" in done.stdout and "(function, asgi; requirements: requirements.txt)" \
        in done.stdout
    assert "secret (create it in the cluster): kubectl create secret generic barrage-kafka" in done.stdout
    assert "exported in" in done.stdout


def test_export_refusals_name_the_document_and_field(tmp_path: Path) -> None:
    done = wisp("export", str(EXAMPLES[1]), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "hello.yaml (document 0):" in done.stderr
    assert "spec.template.spec.containers[0].image: './function' is a local directory" in done.stderr
    assert "--registry" in done.stderr and not (tmp_path / "out").exists()
    done = wisp("export", str(EXAMPLES[1]), "-o", str(tmp_path / "out"), "--registry", "Not A Registry")
    assert done.returncode == 1 and "--registry 'Not A Registry'" in done.stderr


def test_build_without_an_engine_names_the_contexts_for_ci(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert wisp("export", str(EXAMPLES[1]), "-o", str(out), "--registry", REGISTRY).returncode == 0
    empty = tmp_path / "bin"
    empty.mkdir()
    # No podman, docker or buildah on PATH: the requirements are still installed, so the contexts are complete.
    done = wisp("build", str(out), env={**os.environ, "PATH": str(empty)})
    assert done.returncode == 1
    assert "no container engine here (podman, docker or buildah)" in done.stderr
    index = json.loads((out / "build" / "index.json").read_text())
    for entry in index:
        assert f"{out / entry['context']}  →  {entry['image']}" in done.stderr
    # hello's function runtime (starlette, uvicorn, cloudevents ...) is in its deps/ for the image build.
    assert (out / "build" / "hello" / "deps" / "starlette").is_dir()


def test_build_of_a_directory_that_is_no_export_is_refused(tmp_path: Path) -> None:
    done = wisp("build", str(tmp_path))
    assert done.returncode == 1 and "no build/index.json" in done.stderr


def test_export_apply_hands_the_manifests_to_kubectl(tmp_path: Path) -> None:
    kubectl_path()  # skipped without kubectl, failed in CI
    (tmp_path / "empty").mkdir()
    with running_daemon(tmp_path / "empty", tmp_path / "daemon") as daemon:
        done = wisp("export", str(EXAMPLES[1]), str(APPS / "events"), "-o", str(tmp_path / "out"), "--registry",
                    REGISTRY, "--apply", "--context", "wisp", env=daemon.env)
        assert done.returncode == 0, done.stderr
        assert "service.serving.knative.dev/hello created" in done.stdout
        assert "service.serving.knative.dev/echo created" in done.stdout
        got = json.loads(daemon.kubectl("get", "ksvc", "hello", "-o", "json").stdout)
        image = got["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.startswith(f"{REGISTRY}/hello:")
        # A context kubectl does not know is kubectl's error, passed on.
        again = wisp("export", str(EXAMPLES[1]), "-o", str(tmp_path / "out"), "--registry", REGISTRY, "--apply",
                     "--context", "nowhere", env=daemon.env)
        assert again.returncode == 1 and "kubectl apply failed" in again.stderr and "nowhere" in again.stderr
