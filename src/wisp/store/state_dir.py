"""The daemon's state dir is private: it holds every Secret applied to wisp, and the logs of every instance.

A fresh dir is made 0700 and wisp's files in it 0600 before anything writes them (SQLite gives a database's
-wal and -shm files the database's own mode). An existing dir the user chose is left as it is, with a warning
when other users can enter it; wisp's own files in it are tightened to 0600 either way.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("wisp")

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

# What the daemon keeps in its state dir: the one place these names are chosen.
STORE_DB, BROKER_DB, KAFKA_LOG, LOGS_DIR = "store.db", "broker.db", "kafka.log", "logs"
STATE_FILES = (STORE_DB, BROKER_DB, KAFKA_LOG)
STATE_DIRS = (LOGS_DIR,)


def prepare(state_dir: Path, files: Iterable[str] = STATE_FILES, dirs: Iterable[str] = STATE_DIRS) -> None:
    """Make `state_dir` (0700 when new; a warning when an existing one is open to others), its dirs and files."""
    if state_dir.is_dir():
        mode = stat.S_IMODE(state_dir.stat().st_mode)
        if mode & 0o077:
            log.warning("the state dir %s has mode %03o: other local users can read what it holds, including "
                        "your Secrets; make it private with `chmod 700 %s`", state_dir, mode, state_dir)
    else:
        state_dir.mkdir(parents=True, mode=PRIVATE_DIR)
        state_dir.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask; this one is exact
    for name in dirs:
        private_dir(state_dir / name)
    for name in files:
        private_file(state_dir / name)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    path.chmod(PRIVATE_DIR)


def private_file(path: Path) -> None:
    """`path` exists with mode 0600 (created empty if absent, never truncated), and so do its SQLite side files."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(PRIVATE_FILE)
