"""The resource store: every applied object, its status, and a watch of changes."""

from wisp.store.store import ApplyResult, Conflict, NotFound, Store, StoreEvent

__all__ = ["ApplyResult", "Conflict", "NotFound", "Store", "StoreEvent"]
