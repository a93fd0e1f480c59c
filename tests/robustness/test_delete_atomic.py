"""`wisp delete -f` and `wisp apply -f` are all or nothing: every document is checked before anything changes.

Against a real daemon, both through the CLI and straight at the control API (a client that is not this CLI
must not get a half-done delete either).
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.serving.harness import Harness, running_daemon
from wisp.api import kinds as k
from wisp.cli.main import make_app

OBJECTS = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  token: abc
"""

UNKNOWN_KIND = """
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
"""

WRONG_VERSION = """
---
apiVersion: serving.knative.dev/v2
kind: Service
metadata:
  name: nope
"""


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_daemon(tmp_path / "state") as h:
        yield h


async def _wisp(h: Harness, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, make_app(), list(args), env={"WISP_API": h.api, "WISP_TOKEN": ""})
    return result.exit_code, result.stdout + result.stderr


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _names(h: Harness) -> set[str]:
    return {r["metadata"]["name"] for _, r in h.daemon.store.all()}


async def _apply_objects(h: Harness, tmp_path: Path) -> None:
    code, out = await _wisp(h, "apply", "-f", str(_write(tmp_path, "objects.yaml", OBJECTS)))
    assert code == 0, out
    assert _names(h) == {"settings", "creds"}


@pytest.mark.parametrize("bad", [UNKNOWN_KIND, WRONG_VERSION], ids=["unknown-kind", "unserved-version"])
async def test_delete_with_an_unknown_kind_deletes_nothing(daemon: Harness, tmp_path: Path, bad: str) -> None:
    await _apply_objects(daemon, tmp_path)
    manifest = _write(tmp_path, "delete.yaml", OBJECTS + bad)
    code, out = await _wisp(daemon, "delete", "-f", str(manifest))
    assert code == 1, out
    assert f"{manifest} (document 2)" in out and "nothing was deleted" in out, out
    assert _names(daemon) == {"settings", "creds"}


async def test_delete_with_a_broken_second_file_deletes_nothing(daemon: Harness, tmp_path: Path) -> None:
    await _apply_objects(daemon, tmp_path)
    good = _write(tmp_path, "objects.yaml", OBJECTS)
    broken = _write(tmp_path, "broken.yaml", "kind: [unclosed\n")
    code, out = await _wisp(daemon, "delete", "-f", str(good), "-f", str(broken))
    assert code == 1, out
    assert _names(daemon) == {"settings", "creds"}


async def test_delete_of_known_objects_deletes_them_all(daemon: Harness, tmp_path: Path) -> None:
    await _apply_objects(daemon, tmp_path)
    code, out = await _wisp(daemon, "delete", "-f", str(_write(tmp_path, "objects.yaml", OBJECTS)))
    assert code == 0, out
    assert "configmap/settings deleted" in out and "secret/creds deleted" in out
    assert _names(daemon) == set()


@pytest.mark.parametrize("bad_item", [
    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "gizmo"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
    {"apiVersion": "v1", "kind": "ConfigMap"},
    "settings",
], ids=["unknown-kind", "no-name", "no-metadata", "not-an-object"])
async def test_the_delete_endpoint_checks_every_item_first(daemon: Harness, tmp_path: Path,
                                                          bad_item: object) -> None:
    await _apply_objects(daemon, tmp_path)
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}, bad_item]
    response = await daemon.client.post(f"{daemon.api}/delete", json={"items": items})
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "BadRequest" and "item 1" in response.json()["message"]
    assert _names(daemon) == {"settings", "creds"}


@pytest.mark.parametrize("bad", [
    UNKNOWN_KIND,
    """
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: Not_A_Valid_Name
    """,
], ids=["unknown-kind", "invalid-object"])
async def test_apply_with_one_bad_document_applies_nothing(daemon: Harness, tmp_path: Path, bad: str) -> None:
    code, out = await _wisp(daemon, "apply", "-f", str(_write(tmp_path, "apply.yaml", OBJECTS + textwrap.dedent(bad))))
    assert code == 1, out
    assert daemon.daemon.store.all() == []
    assert daemon.daemon.store.get(k.CONFIG_MAP, "default", "settings") is None
