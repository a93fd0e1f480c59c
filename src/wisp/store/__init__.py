"""The resource store: every applied object, its status, and a watch of changes."""

from wisp.store.errors import StoreCorrupt, StoreError, StoreFull
from wisp.store.store import ApplyResult, Conflict, DamagedRow, NotFound, Store, StoreEvent

__all__ = [
    "ApplyResult", "Conflict", "DamagedRow", "NotFound", "Store", "StoreCorrupt", "StoreError", "StoreEvent",
    "StoreFull",
]
