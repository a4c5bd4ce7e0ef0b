"""substrate-interface's ``query`` and ``query_map`` of every storage item issue 3 lists, on a
devnet whose genesis fills each of them (a pool with a Ready and a computing worker, a
registered worker in no pool, a StakePoolManager proxy, W-PHA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from substrateinterface import SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

READY = "0x" + "a1" * 32
COMPUTING = "0x" + "a2" * 32
LONE = "0x" + "a3" * 32

MAPS = [
    ("System", "Account"),
    ("System", "BlockHash"),
    ("Proxy", "Proxies"),
    ("PhalaRegistry", "Workers"),
    ("PhalaRegistry", "WorkerAddedAt"),
    ("PhalaComputation", "WorkerBindings"),
    ("PhalaComputation", "SessionBindings"),
    ("PhalaComputation", "Sessions"),
    ("PhalaComputation", "Stakes"),
    ("PhalaStakePoolv2", "WorkerAssignments"),
    ("PhalaStakePoolv2", "SubAccountPreimages"),
    ("PhalaBasePool", "Pools"),
    ("Assets", "Account"),
]
"""Every map of the issue's list but PhalaMq.OffchainIngress, which only a worker message
fills (its query_map is in test_chain_phala.py)."""


@pytest.fixture(scope="module")
def substrate() -> Iterator[SubstrateInterface]:
    genesis = {
        "balances": {f"//{name}": "1000000 PHA" for name in ("Alice", "Bob", "Charlie")},
        "proxies": [{"real": "//Alice", "delegate": "//Bob", "proxy_type": "StakePoolManager"}],
        "phala": {
            "cool_down_period": 45,
            "workers": [{"pubkey": LONE, "operator": "//Charlie", "initial_score": 900}],
            "pools": [
                {
                    "owner": "//Alice",
                    "free_stake": "100000 PHA",
                    "workers": [
                        {"pubkey": READY, "initial_score": 1200},
                        {"pubkey": COMPUTING, "initial_score": 1300, "stake": "5000 PHA"},
                    ],
                }
            ],
        },
    }
    handle = DevnetChain.start(genesis, block_time="manual", finality_lag=1)
    client = SubstrateInterface(url=handle.url, ss58_format=30)
    try:
        handle.call(lambda: [handle.server.produce_block() for _ in range(2)])
        yield client
    finally:
        client.close()
        handle.stop()


@pytest.mark.parametrize(("pallet", "item"), MAPS, ids=[f"{p}.{i}" for p, i in MAPS])
def test_query_map_decodes_every_entry_and_query_agrees(
    substrate: SubstrateInterface, pallet: str, item: str
) -> None:
    entries = [(k, v) for k, v in substrate.query_map(pallet, item, page_size=2)]
    assert entries, f"{pallet}.{item} is empty"
    for key, value in entries:
        keys = key if isinstance(key, tuple) else (key,)  # a double map's key is a pair
        params = [k.value for k in keys]
        assert substrate.query(pallet, item, params).value == value.value


def test_maps_hold_what_the_genesis_says(substrate: SubstrateInterface) -> None:
    workers = {k.value: v.value for k, v in substrate.query_map("PhalaRegistry", "Workers")}
    assert workers[LONE]["operator"] == dev_key("Charlie").ss58_address
    assert {READY, COMPUTING} <= set(workers)
    bindings = {
        k.value: v.value for k, v in substrate.query_map("PhalaComputation", "WorkerBindings")
    }
    sessions = {k.value: v.value for k, v in substrate.query_map("PhalaComputation", "Sessions")}
    assert sessions[bindings[READY]]["state"] == "Ready"
    assert sessions[bindings[COMPUTING]]["state"] == "WorkerIdle"
    reverse = {
        k.value: v.value for k, v in substrate.query_map("PhalaComputation", "SessionBindings")
    }
    assert reverse[bindings[COMPUTING]] == COMPUTING
    stakes = {k.value: v.value for k, v in substrate.query_map("PhalaComputation", "Stakes")}
    assert stakes[bindings[COMPUTING]] == 5000 * 10**12
    assignments = {
        k.value: v.value for k, v in substrate.query_map("PhalaStakePoolv2", "WorkerAssignments")
    }
    assert assignments[READY] == assignments[COMPUTING]
    assert LONE not in assignments
    hashes = {k.value: v.value for k, v in substrate.query_map("System", "BlockHash")}
    assert hashes[1] == substrate.get_block_hash(1)


def test_plain_items(substrate: SubstrateInterface) -> None:
    number = substrate.query("System", "Number").value
    assert number == 2
    assert substrate.query("System", "Events").value is not None
    assert substrate.query("Timestamp", "Now").value > 0
    assert substrate.query("PhalaComputation", "CoolDownPeriod").value == 45
    assert substrate.query("PhalaBasePool", "PoolCount").value == 1
    assert substrate.query("Balances", "TotalIssuance").value > 0
