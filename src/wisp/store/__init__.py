"""The resource store: every applied object, its status, and a watch of changes."""

from wisp.store.errors import StoreCorrupt, StoreError, StoreFull
from wisp.store.events import StoreEvent
from wisp.store.store import ApplyResult, Conflict, DamagedRow, NotFound, Store
from wisp.store.watch import Change, Expired, Watcher

__all__ = [
    "ApplyResult", "Change", "Conflict", "DamagedRow", "Expired", "NotFound", "Store", "StoreCorrupt", "StoreError",
    "StoreEvent", "StoreFull", "Watcher",
]
