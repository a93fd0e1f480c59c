"""`wisp kubeconfig`: the context printed or merged (others' entries kept, 0600, the token carried), and
kubectl using it against a daemon that requires a bearer token."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.k8s_api.read_side import WISP, kubectl_path, running_daemon
from wisp.cli import kubeconfig

OTHER = {"apiVersion": "v1", "kind": "Config", "current-context": "prod",
         "clusters": [{"name": "prod", "cluster": {"server": "https://prod.example:6443"}},
                      {"name": "wisp", "cluster": {"server": "http://old:1"}}],
         "users": [{"name": "prod", "user": {"token": "prod-token"}}],
         "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}]}


def test_merge_replaces_only_its_own_entries() -> None:
    merged = kubeconfig.merge(OTHER, kubeconfig.build("http://127.0.0.1:8001", "t0k", "wisp", "dev"))
    assert [c["name"] for c in merged["clusters"]] == ["prod", "wisp"]
    assert merged["clusters"][1]["cluster"]["server"] == "http://127.0.0.1:8001"
    assert merged["users"] == [{"name": "prod", "user": {"token": "prod-token"}},
                               {"name": "wisp", "user": {"token": "t0k"}}]
    assert merged["contexts"][1]["context"] == {"cluster": "wisp", "user": "wisp", "namespace": "dev"}
    assert merged["current-context"] == "wisp"
    kept = kubeconfig.merge(OTHER, kubeconfig.build("http://x", None), use_context=False)
    assert kept["current-context"] == "prod" and kept["users"][1] == {"name": "wisp", "user": {}}


def test_target_path_follows_kubeconfig_then_home(tmp_path: Path) -> None:
    assert kubeconfig.target_path({}, tmp_path) == tmp_path / ".kube" / "config"
    assert kubeconfig.target_path({"KUBECONFIG": f"{os.pathsep}/a/b{os.pathsep}/c"}, tmp_path) == Path("/a/b")


@given(st.text(max_size=300))
def test_any_existing_file_is_merged_or_refused_with_its_name(text: str) -> None:
    path = Path(f"/tmp/wisp-kubeconfig-hypothesis-{os.getpid()}")
    path.write_text(text)
    try:
        existing = kubeconfig.load(path)
        kubeconfig.merge(existing, kubeconfig.build("http://x", None))
    except kubeconfig.KubeconfigError as exc:
        assert str(path) in str(exc) or "must be a list" in str(exc)
    finally:
        path.unlink()


def run_wisp(tmp_path: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "kc" / "config")}
    env.pop("WISP_TOKEN", None)
    if token:
        env["WISP_TOKEN"] = token
    return subprocess.run([str(WISP), "--api", "http://127.0.0.1:9", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_command_prints_and_merges_privately(tmp_path: Path) -> None:
    printed = run_wisp(tmp_path, "kubeconfig", token="s3cr3t")
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["users"] == [{"name": "wisp", "user": {"token": "s3cr3t"}}]
    target = tmp_path / "kc" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(OTHER))
    merged = run_wisp(tmp_path, "kubeconfig", "--merge", "--name", "local")
    assert merged.returncode == 0 and str(target) in merged.stdout
    written = yaml.safe_load(target.read_text())
    assert written["current-context"] == "local" and "prod" in [c["name"] for c in written["contexts"]]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target.write_text("- just a list\n")
    refused = run_wisp(tmp_path, "kubeconfig", "--merge")
    assert refused.returncode == 1 and str(target) in refused.stderr and "must be a mapping" in refused.stderr
    assert target.read_text() == "- just a list\n"  # nothing half-written


def test_a_daemon_that_requires_a_token(tmp_path: Path) -> None:
    """The Python client sends the kubeconfig's token (over http too); kubectl without one is refused. (kubectl
    itself sends a kubeconfig's token only to https servers: `wisp kubeconfig` warns so.)"""
    kubectl_path()
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
    with running_daemon(manifest, tmp_path / "work", token="k8s-read-token") as daemon:
        warned = subprocess.run([str(WISP), "--api", daemon.api, "kubeconfig"], env=daemon.env, capture_output=True,
                                text=True, timeout=60, check=True)
        assert "https" in warned.stderr and "k8s-read-token" in warned.stdout
        listing = subprocess.run(
            [sys.executable, "-c", "from kubernetes import client, config; config.load_kube_config(); "
             "print([c.metadata.name for c in client.CoreV1Api().list_namespaced_config_map('default').items])"],
            env=daemon.env, capture_output=True, text=True, timeout=60, check=False)
        assert listing.returncode == 0 and listing.stdout.strip() == "['settings']", listing.stderr
        anonymous = daemon.kubectl("get", "configmaps", check=False)
        assert anonymous.returncode != 0 and "provide credentials" in anonymous.stderr


@pytest.mark.parametrize(("bad", "named"), [("[1, 2", "config: not valid YAML"), ("- a list\n", "must be a mapping"),
                                            ("clusters: 5\n", "clusters: must be a list")])
def test_malformed_files_are_refused_saying_what_is_wrong(tmp_path: Path, bad: str, named: str) -> None:
    path = tmp_path / "config"
    path.write_text(bad)
    with pytest.raises(kubeconfig.KubeconfigError, match=named):
        kubeconfig.merge(kubeconfig.load(path), kubeconfig.build("http://x", None))
