"""What can go wrong with the store's SQLite file, in words a user can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# SQLite's primary result codes (https://sqlite.org/rescode.html); an extended code keeps them in its low byte.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 3, 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class StoreCorrupt(StoreError):
    """The database file is damaged or is not a wisp store at all."""


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full: nothing was written."""


def corrupt_message(path: Path | None, problem: str) -> str:
    where = path or "the in-memory store"
    return (f"the state database {where} is corrupt ({problem}). wisp will not start on it: move it aside "
            f"(mv {where} {where}.corrupt) and start again with an empty store, then re-apply your manifests; "
            f"`sqlite3 {where}.corrupt .recover` may salvage its objects")


def translate(exc: sqlite3.Error, path: Path | None) -> StoreError:
    """A StoreError saying what `exc` means for the user, by its SQLite result code."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    where = path or "the in-memory store"
    if code == SQLITE_FULL:
        return StoreFull(f"no space left on device: the state database {where} cannot grow ({exc}); "
                         "nothing was written — free some disk space and retry")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return StoreCorrupt(corrupt_message(path, str(exc)))
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return StoreError(f"the state database {where} is locked ({exc}): is another `wisp up` using this "
                          "state dir?")
    if code in (SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN):
        return StoreError(f"the state database {where} cannot be written ({exc}): check the state dir's "
                          "permissions and that its file system is writable")
    if code == SQLITE_IOERR:
        return StoreError(f"the state database {where} could not be read or written ({exc}): check the disk")
    return StoreError(f"the state database {where} failed: {exc}")
