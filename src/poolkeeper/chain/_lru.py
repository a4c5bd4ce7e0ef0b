"""An LRU cache bounded by the bytes of what it holds, not by its number of entries.

The relay source caches very different things side by side: a block hash (70 bytes), a
SCALE header (a few hundred), a decoded storage-change chunk (megabytes on a busy
chain). A bound on the count of entries bounds none of them: 32,768 entries of a chunk
each is gigabytes. This cache charges every entry its estimated size and evicts the
least recently used until the total fits.
"""

from __future__ import annotations

import sys
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

_ENTRY_OVERHEAD = 120
"""Bytes charged per entry on top of its value (key tuple, dict slot, bookkeeping)."""


def estimate_size(value: Any) -> int:
    """Bytes a value holds, roughly: exact for bytes and str, recursive for the JSON-like
    containers (lists, tuples, dicts) that RPC replies decode to, ``sys.getsizeof`` else.

    Dataclass values are measured through their fields."""
    seen: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, name) for name in item.__dataclass_fields__)
    return total


class ByteLru:
    """``get``/``put``/``pop`` with least-recently-used eviction past ``max_bytes``.

    A single value larger than the whole budget is not kept at all (it would evict
    everything else and then itself)."""

    alive: ClassVar[weakref.WeakSet[ByteLru]] = weakref.WeakSet()
    """Every instance, for the memory diagnosis (``gc.get_objects`` misses the ones
    ``gc.freeze`` moved to the permanent generation, as the chain client does)."""

    def __init__(self, max_bytes: int, *, sizeof: Callable[[Any], int] = estimate_size) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        """Bytes currently charged."""
        self.evictions = 0
        ByteLru.alive.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return default
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Any, value: Any) -> None:
        self.pop(key)
        size = self._sizeof(value) + _ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted
            self.evictions += 1

    def pop(self, key: Any) -> Any:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.bytes -= entry[1]
        return entry[0]


def cache_bytes() -> int:
    """Bytes charged in every ``ByteLru`` alive (the relay source's caches)."""
    return sum(cache.bytes for cache in list(ByteLru.alive))
