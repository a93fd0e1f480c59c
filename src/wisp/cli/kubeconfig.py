"""`wisp kubeconfig`: a kubeconfig context for the daemon, printed or merged into the user's kubeconfig.

Merging replaces only the cluster, user and context of the same name, keeps everything else the file holds,
and writes the file 0600 through a temporary file and a rename (a kubeconfig may hold other clusters'
credentials; a crash mid-write must not leave half of it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MAX_KUBECONFIG_BYTES = 16 * 1024 * 1024
# client-go reads a kubeconfig's credentials only for https servers; the Python client sends them either way.
HTTP_TOKEN_WARNING = ("warning: kubectl sends a bearer token only to an https server, so it will be refused here; "
                      "reach the daemon on its loopback address (no token needed, e.g. through `ssh -L`) or "
                      "through a TLS proxy. Client libraries such as Python's kubernetes send it over http.")


class KubeconfigError(Exception):
    """The existing kubeconfig cannot be merged into; the message names the file and the problem."""


def build(server: str, token: str | None, name: str = "wisp", namespace: str = "default") -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


def target_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where kubectl reads first: the first file of $KUBECONFIG, else ~/.kube/config."""
    for entry in environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry.strip():
            return Path(entry.strip()).expanduser()
    return home / ".kube" / "config"


def merge(existing: dict[str, Any], new: dict[str, Any], use_context: bool = True) -> dict[str, Any]:
    out = dict(existing)
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        entries = out.get(section) or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"{section}: must be a list")
        added = {entry["name"] for entry in new[section]}
        kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") in added)]
        out[section] = [*kept, *new[section]]
    if use_context or not out.get("current-context"):
        out["current-context"] = new["current-context"]
    return out


def load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KUBECONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise KubeconfigError(f"{path}: {exc.strerror}") from exc
    if len(data) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigError(f"{path}: larger than {MAX_KUBECONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{path}: not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeconfigError(f"{path}: must be a mapping (a kubeconfig), not {type(document).__name__}")
    return document


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".wisp-kubeconfig-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp creates it 0600
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
