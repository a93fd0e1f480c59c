"""The state dir holds every Secret applied to wisp: a fresh one is 0700 and wisp's files in it 0600 (SQLite's
-wal and -shm too); an existing dir open to others draws a warning at start."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.robustness.test_expect_continue import write_container
from tests.serving.harness import running_daemon, service, write_function
from wisp.store.state_dir import STATE_FILES

SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most users have: what wisp makes private must not depend on a stricter one."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "state dir" in r.getMessage()]


async def test_a_fresh_state_dir_is_private(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "fresh" / "state"
    with caplog.at_level(logging.WARNING, logger="wisp"):
        async with running_daemon(state) as h:
            response = await h.client.post(f"{h.api}/apply", json={"items": [SECRET]})
            assert response.status_code == 200
            modes = {p.name: _mode(p) for p in state.iterdir()}
    assert _mode(state) == 0o700
    assert modes["logs"] == 0o700
    for name in STATE_FILES:
        assert modes.get(name) == 0o600, (name, modes)
    files = {name: mode for name, mode in modes.items() if (state / name).is_file()}
    assert all(mode == 0o600 for mode in files.values()), {n: oct(m) for n, m in files.items()}
    assert _warnings(caplog) == []


async def test_sqlite_side_files_are_private_while_the_daemon_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with running_daemon(state) as h:
        await h.client.post(f"{h.api}/apply", json={"items": [SECRET]})
        side = [p for p in state.iterdir() if p.name.endswith(("-wal", "-shm"))]
        assert any(p.name.startswith("store.db") for p in side), sorted(p.name for p in state.iterdir())
        assert {p.name: _mode(p) for p in side} == {p.name: 0o600 for p in side}


async def test_an_existing_loose_state_dir_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    old_db = state / "store.db"
    old_db.touch()
    old_db.chmod(0o644)  # as an older wisp left it
    with caplog.at_level(logging.WARNING, logger="wisp"):
        async with running_daemon(state):
            pass
    [warning] = _warnings(caplog)
    assert str(state) in warning and "755" in warning and f"chmod 700 {state}" in warning
    assert _mode(state) == 0o755, "the user's own dir is theirs to change; wisp only warns"
    assert _mode(old_db) == 0o600, "wisp's own files are made private either way"


async def test_a_private_existing_dir_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="wisp"):
        async with running_daemon(state):
            pass
    assert _warnings(caplog) == []


async def test_instance_logs_are_private(tmp_path: Path) -> None:
    # What an app prints may hold its secrets; the logs dir is 0700 and each log 0600, whatever the umask.
    code = write_function(tmp_path / "fn", "def handle(request):\n    print('hello', flush=True)\n    return 'ok'\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("fn", code), service("box", write_container(tmp_path / "box"), function=False,
                                             container={"command": ["python", "server.py"]}))
        for name in ("fn", "box"):
            await h.ready(name)
            assert (await h.request(f"{name}.default.localhost", method="POST", content=b"x")).status_code == 200
        logs = [p for p in (tmp_path / "state" / "logs").rglob("*") if p.is_file()]
        assert {p.parent.parent.name for p in logs} >= {"default"}, logs
        assert len({p.parent.name for p in logs}) == 2, logs  # both revisions wrote
        assert {p.name: _mode(p) for p in logs} == {p.name: 0o600 for p in logs}
