"""The chain adapter's reads on the devnet: hand-written decoding gives exactly what
scalecodec gives, and the paged map listing finds every entry.

A devnet chain with pools of Ready and computing workers, a registered worker in no
pool, balances and a proxy is read twice: with the hand-written decoders, and with every
decoder switched off (all values through scalecodec, as before they existed).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from substrateinterface import Keypair

from poolkeeper.chain import SubstrateChain, _fast_decode
from poolkeeper.chain.ports import ChainState
from poolkeeper_devnet.chain.server import DevnetChain

SS58 = 30


def address(uri: str) -> str:
    return str(Keypair.create_from_uri(uri, ss58_format=SS58).ss58_address)


@pytest.fixture(scope="module")
def chain() -> Iterator[DevnetChain]:
    genesis = {
        "balances": {"//Alice": "1000 PHA", "//Bob": "5 PHA"},
        "proxies": [{"real": "//Alice", "delegate": "//Bob", "proxy_type": "Any"}],
        "phala": {
            "workers": [{"pubkey": "0x" + "77" * 32, "operator": "//Bob", "initial_score": 9}],
            "pools": [
                {"owner": "//Alice", "free_stake": "1000 PHA", "worker_count": 3},
                {
                    "owner": "//Bob",
                    "workers": [{"pubkey": "0x" + "42" * 32, "stake": "700 PHA"}],
                    "worker_count": 2,
                },
                {"owner": "//Alice"},
            ],
        },
    }
    handle = DevnetChain.start(genesis, block_time="manual")
    try:
        yield handle
    finally:
        handle.stop()


async def read(url: str, *, fast: bool) -> tuple[ChainState, bool, int]:
    chain = SubstrateChain(url)
    try:
        state = await chain.read_state(
            [0, 1, 2, 3], [address("//Alice"), address("//Bob"), address("//Nobody")], ["77" * 32]
        )
        values = chain._values
        assert values is not None
        return state, values.is_fast("PhalaComputation", "Sessions"), values.fallbacks
    finally:
        await chain.close()


def test_fast_and_scalecodec_reads_agree(
    chain: DevnetChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_state, fast_used, fast_fallbacks = asyncio.run(read(chain.url, fast=True))
    monkeypatch.setattr(_fast_decode, "ITEMS", {})
    slow_state, slow_used, slow_fallbacks = asyncio.run(read(chain.url, fast=False))
    assert fast_used and not slow_used
    assert fast_fallbacks == 1  # Alice's Proxy.Proxies: no hand-written decoder for it
    assert slow_fallbacks > 20
    assert dataclasses.replace(fast_state, round_trips=0) == dataclasses.replace(
        slow_state, round_trips=0
    )
    # what the world holds, so that "equal" is not "equally empty"
    assert set(fast_state.pools) == {0, 1, 2}
    assert len(fast_state.workers) == 3 + 3 + 1
    computing = fast_state.workers["42" * 32]
    assert computing.session_state is not None and computing.session_state.value == "WorkerIdle"
    assert computing.stake == 700 * 10**12 and computing.pool_pid == 1
    loose = fast_state.workers["77" * 32]
    assert loose.operator == address("//Bob") and loose.session is None
    assert loose.initial_score == 9
    assert fast_state.pools[0].free_stake == 1000 * 10**12
    assert fast_state.accounts[address("//Alice")].free == 1000 * 10**12
    assert fast_state.accounts[address("//Nobody")].free == 0
    assert [(p.real, p.delegate) for p in fast_state.proxies] == [
        (address("//Alice"), address("//Bob"))
    ]


def test_read_map_lists_every_entry(chain: DevnetChain) -> None:
    async def listing() -> tuple[dict[str, object], dict[str, object], ChainState, int]:
        reader = SubstrateChain(chain.url)
        try:
            state = await reader.read_state([0, 1, 2], (), ["77" * 32])
            before = reader.round_trips
            workers = await reader.read_map("PhalaRegistry", "Workers", page_size=2)
            trips = reader.round_trips - before
            bindings = await reader.read_map("PhalaComputation", "WorkerBindings")
            return workers, bindings, state, trips
        finally:
            await reader.close()

    workers, bindings, state, trips = asyncio.run(listing())
    assert set(workers) == {"0x" + pk for pk in state.workers}
    assert trips == 1 + 2 * 4  # head; 7 entries in pages of 2: 4 pages of keys and values
    info = workers["0x" + "77" * 32]
    assert isinstance(info, dict) and info["operator"] == address("//Bob")
    assert {k: v for k, v in bindings.items()} == {
        "0x" + pk: w.session for pk, w in state.workers.items() if w.session is not None
    }
