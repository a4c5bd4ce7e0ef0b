"""ByteLru: bounded by bytes, least recently used first out; the relay source keeps one
partial storage-change chunk, not one per finalized block."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from poolkeeper.chain._lru import ByteLru, estimate_size
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain._scale import storage_changes
from poolkeeper.chain.relay_source import CHANGES_CHUNK, RelaySource


def test_eviction_by_bytes_in_lru_order() -> None:
    cache = ByteLru(10_000, sizeof=len)
    for key in "abcd":
        cache.put(key, b"x" * 2_000)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("e", b"x" * 3_000)
    assert "b" not in cache and "a" in cache and "e" in cache
    assert cache.bytes <= 10_000 and cache.evictions >= 1
    cache.put("huge", b"x" * 20_000)  # larger than the whole budget: not kept
    assert "huge" not in cache and "a" in cache


def test_replacing_a_key_does_not_double_count() -> None:
    cache = ByteLru(1_000_000, sizeof=len)
    for _ in range(100):
        cache.put("k", b"x" * 5_000)
    assert len(cache) == 1 and cache.bytes < 6_000
    assert cache.pop("k") is not None and cache.bytes == 0


def test_estimate_counts_nested_json_like_values() -> None:
    small = estimate_size([{"key": "0x00", "value": "0x01"}])
    big = estimate_size([{"key": "0x" + "00" * 32, "value": "0x" + "11" * 1000}] * 1)
    assert big > small + 2000
    assert estimate_size(b"x" * 10_000) >= 10_000


class ChainOfChanges:
    """Hashes, finalized head and large storage-change replies; the head is set by the test."""

    def __init__(self) -> None:
        self.finalized = 5
        self.ranges: list[tuple[int, int]] = []

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        if method == "chain_getFinalizedHead":
            return f"0x{self.finalized:064x}"
        if method == "chain_getHeader":
            return {"number": hex(int(str(params and params[0]), 16))}
        if method == "chain_getBlockHash":
            return f"0x{int(params[0]) if params else 0:064x}"
        assert method == "pha_getStorageChanges"
        start, end = (int(str(h), 16) for h in params or ())
        self.ranges.append((start, end))
        return [
            {"mainStorageChanges": [["0x" + "ab" * 32, "0x" + "cd" * 2000]]}
            for _ in range(start, end + 1)
        ]


async def test_a_growing_chunk_is_kept_once_and_the_cache_stays_in_its_budget() -> None:
    node = ChainOfChanges()
    source = RelaySource(cast(AsyncRpc, node), cache_bytes=2_000_000, head_ttl=0.0)
    for finalized in range(5, CHANGES_CHUNK - 1):
        node.finalized = finalized
        changes = await source._changes_chunk(0)
        assert len(changes) >= finalized + 1
    # One partial copy, none in the byte cache under per-block keys.
    assert len(source._partial_changes) == 1
    assert not any(k[0] == "changes" for k in source.cache._entries)
    node.finalized = CHANGES_CHUNK * 3
    await asyncio.gather(*(source._changes_chunk(c) for c in range(3)))
    assert source._partial_changes == {}
    assert source.cache.bytes <= 2_000_000
    assert not any(k[0] == "finalized" for k in source.cache._entries)


async def test_byte_budget_holds_requests_until_their_bytes_fit() -> None:
    from poolkeeper.pruntime._budget import ByteBudget

    budget = ByteBudget(1_000)
    order: list[str] = []

    async def request(name: str, size: int, seconds: float) -> None:
        async with budget.hold(size):
            order.append(f"start {name}")
            await asyncio.sleep(seconds)
        order.append(f"end {name}")

    await asyncio.gather(
        request("a", 600, 0.05),
        request("b", 600, 0.01),  # waits for a: 1,200 bytes would not fit
        request("huge", 5_000, 0.01),  # larger than the budget: goes alone
    )
    assert order.index("start b") > order.index("end a")
    assert budget.peak <= 1_000 or budget.peak == 5_000
    assert budget.in_use == 0


async def test_a_complete_chunk_is_kept_encoded_not_as_the_decoded_reply() -> None:
    node = ChainOfChanges()
    node.finalized = CHANGES_CHUNK * 2
    source = RelaySource(cast(AsyncRpc, node), cache_bytes=20_000_000, head_ttl=0.0)
    chunk = await source._changes_chunk(0)
    [(kept, charged)] = [v for k, v in source.cache._entries.items() if k == ("changes", 0)]
    assert kept is chunk
    reply = await node.call("pha_getStorageChanges", [f"0x{0:064x}", f"0x{63:064x}"])
    assert kept == [storage_changes(entry["mainStorageChanges"], []) for entry in reply]
    # a real reply has its own strings for every block (this one shares them)
    decoded = sum(estimate_size(entry) for entry in reply)
    assert charged < 0.6 * decoded, (charged, decoded)


async def test_a_growing_chunk_asks_the_node_only_for_blocks_finalized_since() -> None:
    node = ChainOfChanges()
    source = RelaySource(cast(AsyncRpc, node), cache_bytes=20_000_000, head_ttl=0.0)
    for finalized in (5, 6, 9):
        node.finalized = finalized
        assert len(await source._changes_chunk(0)) == finalized + 1
    node.finalized = CHANGES_CHUNK + 3  # the chunk is complete now
    whole = await source._changes_chunk(0)
    assert node.ranges == [(0, 5), (6, 6), (7, 9), (10, CHANGES_CHUNK - 1)]
    reply = await node.call("pha_getStorageChanges", [f"0x{0:064x}", f"0x{63:064x}"])
    assert whole == [storage_changes(entry["mainStorageChanges"], []) for entry in reply]
