"""The running pieces of a kind (source dispatchers, trigger dispatchers, ping runners), one per object.

Each piece is kept with the spec it was built from: a reconcile that brings the same spec changes nothing, a
changed one stops the old piece before the new one starts (two dispatchers of one object never overlap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

Name = tuple[str, str]  # namespace, name


class Piece(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


P = TypeVar("P", bound=Piece)


@dataclass
class _Entry(Generic[P]):
    spec: object  # what the piece was built from; equal spec → nothing to do
    piece: P


class Pieces(Generic[P]):
    def __init__(self) -> None:
        self._entries: dict[Name, _Entry[P]] = {}

    def get(self, key: Name) -> P | None:
        entry = self._entries.get(key)
        return entry.piece if entry is not None else None

    def items(self) -> list[tuple[Name, P]]:
        return [(key, entry.piece) for key, entry in self._entries.items()]

    async def ensure(self, key: Name, spec: object, build: Callable[[], Awaitable[P]]) -> P:
        """The piece running for `key` if it was built from an equal spec; else the old one stopped and
        `build()`'s started. A failing build or start leaves nothing running for `key`."""
        entry = self._entries.get(key)
        if entry is not None and entry.spec == spec:
            return entry.piece
        await self.stop(key)
        piece = await build()
        await piece.start()
        self._entries[key] = _Entry(spec, piece)
        return piece

    async def stop(self, key: Name) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            await entry.piece.stop()

    async def stop_all(self) -> None:
        entries = list(self._entries.values())
        self._entries.clear()
        await asyncio.gather(*(e.piece.stop() for e in entries), return_exceptions=True)
