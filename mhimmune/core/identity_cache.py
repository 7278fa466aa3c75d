"""A small thread-safe cache of values computed from immutable objects, by their identity.

Ensemble rows that differ only in parameter values hand the engine the same protocol and
schedule objects again and again; what depends only on those objects (a schedule built
from a protocol, the recorded-time layout of a schedule) is computed once and reused.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["IdentityCache"]

V = TypeVar("V")


class IdentityCache(Generic[V]):
    """The values of the last *size* keys, each key a tuple of objects compared by identity
    plus hashable extras (least recently used dropped first).

    Each entry holds its key objects, so that their ids cannot be reused by other objects
    while the entry exists; the objects must not change in a way that changes the value.
    One lock guards the entries: threads of one process (a threaded Dask worker) share it.
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"size: must be ≥ 1 (got {size})")
        self.size = size
        self._entries: OrderedDict[tuple, tuple[tuple, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, objects: tuple[Any, ...], compute: Callable[[], V], extra: Hashable = ()) -> V:
        """The value cached for *objects* (by identity) and *extra*, else ``compute()``,
        stored before it is returned."""
        key = (tuple(map(id, objects)), extra)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and all(map(operator.is_, hit[0], objects)):  # same length
                self._entries.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._entries[key] = (objects, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
