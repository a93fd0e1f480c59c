"""The store's integrity: a damaged file stops `wisp up` with a clear message, a damaged or invalid object is set
aside by name instead of being reconciled, and a full disk is a clear 507 on apply with nothing written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.cli.main import make_app
from wisp.control.admission import admit, apply_manifests
from wisp.net import free_port
from wisp.store import Store, StoreCorrupt, StoreFull
from wisp.types import Resource

WISP = Path(sys.executable).parent / "wisp"


def config_map(name: str, data: dict[str, object]) -> Resource:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def _store(state: Path) -> Store:
    store = Store(state / "store.db", lambda: 1_700_000_000.0)
    store.open()
    return store


def _fill(state: Path, count: int = 200) -> None:
    """A store with enough objects to span many pages, then closed (its WAL folded into the file)."""
    store = _store(state)
    apply_manifests([config_map(f"cm-{i:03}", {"payload": f"value-{i}-" + "z" * 200}) for i in range(count)], store)
    store.close()


def _wisp_up(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WISP), "up", "--state-dir", str(state), "--port", str(free_port()), "--api-port", str(free_port())],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _assert_refused_clearly(result: subprocess.CompletedProcess[str], db: Path) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"the state database {db} is corrupt" in result.stderr, result.stderr
    assert f"mv {db} {db}.corrupt" in result.stderr, result.stderr


# -- a damaged file ----------------------------------------------------------------------------------


def test_wisp_up_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "store.db").write_bytes(os.urandom(8192))
    _assert_refused_clearly(_wisp_up(state), state / "store.db")


def test_wisp_up_refuses_a_database_with_damaged_pages(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _fill(state)
    db = state / "store.db"
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    for offset in range(2 * page, 2 * page + 64):  # the header of a b-tree page of the resources table
        data[offset] ^= 0xFF
    db.write_bytes(bytes(data))
    _assert_refused_clearly(_wisp_up(state), db)


def test_opening_a_damaged_file_raises_store_corrupt(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"not a database at all" * 500)
    with pytest.raises(StoreCorrupt, match="is corrupt"):
        _store(tmp_path)


# -- a damaged or invalid object -------------------------------------------------------------------------


def _flip_inside(db: Path, marker: bytes) -> None:
    data = bytearray(db.read_bytes())
    at = data.find(marker)
    assert at >= 0 and data.find(marker, at + 1) < 0, "the marker must be stored once"
    data[at + len(marker) // 2] ^= 0x01  # one bit: still JSON, still a valid object, no longer what was written
    db.write_bytes(bytes(data))


def _set_aside(state: Path) -> list[tuple[str, str, str]]:
    with contextlib.closing(sqlite3.connect(state / "store.db")) as db:
        return [(kind, name, reason) for kind, name, reason in db.execute("SELECT kind, name, reason FROM set_aside")]


@contextlib.contextmanager
def _errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    found: list[str] = []
    with caplog.at_level(logging.ERROR, logger="wisp"):
        yield found
        found.extend(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_a_flipped_byte_in_a_stored_object_is_set_aside_not_reconciled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    store = _store(state)
    service: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "flipped"},
        "spec": {"template": {"spec": {"containers": [{"image": "./app-MARKER-image"}]}}},
    }
    apply_manifests([service, config_map("intact", {"greeting": "hello"})], store)
    store.close()
    _flip_inside(state / "store.db", b"MARKER-image")

    with _errors(caplog) as errors:
        async with running_daemon(state) as h:
            await asyncio.sleep(0.5)  # time enough for a reconciler to act, if it could see the Service
            assert h.daemon.store.get(k.SERVICE, "default", "flipped") is None
            assert h.daemon.store.list(k.CONFIGURATION) == [] and h.daemon.store.list(k.REVISION) == []
            assert h.daemon.store.get(k.CONFIG_MAP, "default", "intact") is not None
            response = await h.client.get(f"{h.api}/apis/serving.knative.dev/v1/namespaces/default/services/flipped")
            assert response.status_code == 404
    [report] = [e for e in errors if "flipped" in e]
    assert report.startswith("Service default/flipped was set aside and is neither served nor reconciled")
    assert "checksum mismatch" in report and str(state / "store.db") in report
    assert [(kind, name) for kind, name, _ in _set_aside(state)] == [("serving.knative.dev/services", "flipped")]


async def test_a_stored_object_that_no_longer_validates_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    store = _store(state)
    # Written behind admission's back (as an older wisp, or a hand edit, might have): intact, but invalid.
    store.apply([(k.CONFIG_MAP, config_map("typed", {"port": 8080})),
                 (k.SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leaky"},
                             "data": {"token": "PLAIN-TEXT-SECRET!"}}),
                 (k.CONFIG_MAP, config_map("fine", {"port": "8080"}))])
    store.close()

    with _errors(caplog) as errors:
        async with running_daemon(state) as h:
            names = {r["metadata"]["name"] for _, r in h.daemon.store.all()}
            assert names == {"fine"}
    typed = next(e for e in errors if "ConfigMap default/typed" in e)
    assert "no longer passes validation" in typed and "data[port]" in typed
    leaky = next(e for e in errors if "Secret default/leaky" in e)
    assert "PLAIN-TEXT-SECRET" not in leaky and "data[token]" in leaky
    assert {name for _, name, _ in _set_aside(state)} == {"typed", "leaky"}


async def test_a_set_aside_object_can_be_applied_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = _store(state)
    store.apply([(k.CONFIG_MAP, config_map("typed", {"port": 8080}))])
    store.close()
    async with running_daemon(state) as h:
        response = await h.client.post(f"{h.api}/apply", json={"items": [config_map("typed", {"port": "8080"})]})
        assert response.status_code == 200 and response.json()["items"][0]["action"] == "created"


def test_a_store_from_before_checksums_is_trusted_as_it_is(tmp_path: Path) -> None:
    body = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old", "namespace": "default"}}'
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
        db.execute("CREATE TABLE resources (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
                   " body TEXT NOT NULL, PRIMARY KEY (kind, namespace, name))")
        db.execute("INSERT INTO resources VALUES ('/configmaps', 'default', 'old', ?)", (body,))
        db.commit()
    store = _store(tmp_path)
    assert store.damaged() == []
    assert store.get(k.CONFIG_MAP, "default", "old") is not None
    store.close()
    data = bytearray((tmp_path / "store.db").read_bytes())
    at = data.find(b'"name": "old"')
    data[at + 10] ^= 0x01  # now that it has a checksum, a change is seen
    (tmp_path / "store.db").write_bytes(bytes(data))
    store = _store(tmp_path)
    assert [row.name for row in store.damaged()] == ["old"]


# -- a full disk -----------------------------------------------------------------------------------------


def _cap(store: Store) -> None:
    """The database may not grow past what it holds now: SQLite's SQLITE_FULL, as on a full disk."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 1}")


def test_a_full_store_raises_store_full_and_writes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    apply_manifests([config_map("before", {"k": "v"})], store)
    _cap(store)
    batch = admit([config_map(f"big-{i}", {"k": "x" * 100_000}) for i in range(3)], store)
    with pytest.raises(StoreFull, match="no space left on device"):
        store.apply(batch)
    assert [r["metadata"]["name"] for _, r in store.all()] == ["before"]
    store.db.execute("PRAGMA max_page_count = 1073741823")
    store.apply(batch)  # no transaction was left open
    assert len(store.all()) == 4


async def test_apply_on_a_full_disk_is_a_clear_507(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state") as h:
        _cap(h.daemon.store)
        items = [config_map("small", {"k": "v"}), config_map("big", {"k": "x" * 200_000})]
        response = await h.client.post(f"{h.api}/apply", json={"items": items})
        assert response.status_code == 507, response.text
        status = response.json()
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "InsufficientStorage", 507)
        assert status["message"].startswith("no space left on device: the state database")
        assert h.daemon.store.all() == []

        runner = CliRunner()
        manifest = tmp_path / "big.yaml"
        manifest.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  k: {'x' * 200_000}\n")
        result = await asyncio.to_thread(runner.invoke, make_app(), ["apply", "-f", str(manifest)],
                                         env={"WISP_API": h.api, "WISP_TOKEN": ""})
        assert result.exit_code == 1
        assert "Error from server (InsufficientStorage): no space left on device" in result.stderr, result.stderr


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill a real disk: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_really_full_disk_is_a_clear_507(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        async with running_daemon(disk / "state") as h:
            filler = os.open(disk / "filler", os.O_CREAT | os.O_WRONLY)
            try:
                with contextlib.suppress(OSError):
                    while True:
                        os.write(filler, b"\0" * 65536)
            finally:
                os.close(filler)
            response = await h.client.post(f"{h.api}/apply",
                                           json={"items": [config_map("big", {"k": "x" * 500_000})]})
            assert response.status_code == 507, response.text
            assert response.json()["message"].startswith("no space left on device")
            os.remove(disk / "filler")
            response = await h.client.post(f"{h.api}/apply",
                                           json={"items": [config_map("big", {"k": "x" * 500_000})]})
            assert response.status_code == 200, response.text
