"""The soak diagnosis hook (``poolkeeper._memtrace``): off unless asked, and its probe of
the relay source caches counts what they hold."""

from __future__ import annotations

from poolkeeper._memtrace import _byte_lru_bytes, start_from_env
from poolkeeper.chain._lru import ByteLru


def test_off_without_the_variable() -> None:
    assert start_from_env({}) is None
    assert start_from_env({"POOLKEEPER_TRACEMALLOC": ""}) is None


def test_the_cache_probe_counts_bytes_held() -> None:
    before = _byte_lru_bytes()
    cache = ByteLru(1 << 20)
    cache.put(("block", 1), b"x" * 5000)
    assert _byte_lru_bytes() - before == cache.bytes > 5000
