"""A small thread-safe least-recently-used mapping (per-process caches of embeddings and results)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most `capacity()` items; the least recently used one goes first. `capacity` is a callable
    so the size follows the settings (tests change them) without rebuilding the cache."""

    def __init__(self, capacity: Callable[[], int]) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> None:
        capacity = self._capacity()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > max(capacity, 0):
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
