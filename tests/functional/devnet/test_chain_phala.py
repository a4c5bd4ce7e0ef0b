"""substrate-interface, unmodified, against the devnet chain's Phala pallets: storage items
queried and query_mapped, calls submitted plain, inside force_batch and through a
StakePoolManager proxy, errors decoded to their real names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sr25519
from substrateinterface import Keypair, SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.codec import blake2_256, encode_bytes, u64
from tests.functional.devnet.conftest import dev_key

PHA = 10**12
WORKER_SEEDS = [blake2_256(f"functional-worker-{i}".encode()) for i in range(4)]
WORKERS = ["0x" + bytes(sr25519.pair_from_seed(seed)[0]).hex() for seed in WORKER_SEEDS]


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    genesis = {
        "balances": {
            "//Alice": "1000000 PHA",
            "//Bob": "1000 PHA",
            "//Charlie": "1000 PHA",
        },
        "proxies": [{"real": "//Alice", "delegate": "//Bob", "proxy_type": "StakePoolManager"}],
        "cool_down_period": 30,
        "phala": {
            "benchmark_duration": 2,
            "workers": [
                {"pubkey": WORKERS[0], "operator": "//Alice", "initial_score": 1000},
                {"pubkey": WORKERS[1], "operator": "//Alice", "initial_score": 1000},
                {"pubkey": WORKERS[2], "operator": "//Charlie", "initial_score": 1000},
            ],
        },
    }
    handle = DevnetChain.start(genesis, block_time="instant", finality_lag=0)
    try:
        yield handle
    finally:
        handle.stop()


def submit(
    substrate: SubstrateInterface, key: Keypair, module: str, function: str, **args: Any
) -> Any:
    composed = substrate.compose_call(module, function, args)
    return substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(composed, key), wait_for_inclusion=True
    )


def events(receipt: Any, event_id: str) -> list[dict[str, Any]]:
    return [
        e.value["attributes"] for e in receipt.triggered_events if e.value["event_id"] == event_id
    ]


@pytest.fixture(scope="module")
def pool(substrate: SubstrateInterface) -> int:
    """A pool of Alice's with 1000 PHA of free stake."""
    alice = dev_key("Alice")
    receipt = submit(substrate, alice, "PhalaStakePoolv2", "create")
    assert receipt.is_success, receipt.error_message
    pid = int(events(receipt, "PoolCreated")[0]["pid"])
    calls = [
        substrate.compose_call("PhalaWrappedBalances", "wrap", {"amount": 1000 * PHA}),
        substrate.compose_call(
            "PhalaStakePoolv2", "contribute", {"pid": pid, "amount": 1000 * PHA, "as_vault": None}
        ),
    ]
    receipt = submit(substrate, alice, "Utility", "batch_all", calls=calls)
    assert receipt.is_success, receipt.error_message
    return pid


def test_pool_creation_is_visible_in_storage(substrate: SubstrateInterface, pool: int) -> None:
    assert substrate.query("PhalaBasePool", "PoolCount").value >= pool + 1
    stored = substrate.query("PhalaBasePool", "Pools", [pool]).value
    assert "StakePool" in stored
    pool_account = stored["StakePool"]["basepool"]["pool_account_id"]
    free = substrate.query("Assets", "Account", [10000, pool_account]).value
    assert free["balance"] == 1000 * PHA


def test_worker_lifecycle_with_proxy_and_force_batch(
    devnet: DevnetChain, substrate: SubstrateInterface, pool: int
) -> None:
    alice, bob = dev_key("Alice"), dev_key("Bob")
    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "add_worker", pid=pool, pubkey=WORKERS[0]
    )
    assert receipt.is_success, receipt.error_message
    session = events(receipt, "PoolWorkerAdded")[0]["session"]
    assert substrate.query("PhalaStakePoolv2", "WorkerAssignments", [WORKERS[0]]).value == pool
    assert substrate.query("PhalaComputation", "WorkerBindings", [WORKERS[0]]).value == session
    assert substrate.query("PhalaComputation", "SessionBindings", [session]).value == WORKERS[0]
    assert substrate.query("PhalaComputation", "Sessions", [session]).value["state"] == "Ready"

    start = substrate.compose_call(
        "PhalaStakePoolv2",
        "start_computing",
        {"pid": pool, "worker": WORKERS[0], "stake": 100 * PHA},
    )
    receipt = submit(
        substrate, bob, "Proxy", "proxy", real=alice.ss58_address, force_proxy_type=None, call=start
    )
    assert receipt.is_success
    assert "Ok" in events(receipt, "ProxyExecuted")[0]["result"]
    assert events(receipt, "WorkerStarted")
    assert substrate.query("PhalaComputation", "Sessions", [session]).value["state"] == "WorkerIdle"
    assert substrate.query("PhalaComputation", "Stakes", [session]).value == 100 * PHA

    stop = substrate.compose_call(
        "PhalaStakePoolv2", "stop_computing", {"pid": pool, "worker": WORKERS[0]}
    )
    unknown = substrate.compose_call(
        "PhalaStakePoolv2", "add_worker", {"pid": pool, "pubkey": "0x" + "ab" * 32}
    )
    receipt = submit(substrate, alice, "Utility", "force_batch", calls=[stop, unknown])
    assert receipt.is_success
    assert len(events(receipt, "ItemCompleted")) == 1
    assert len(events(receipt, "ItemFailed")) == 1
    state = substrate.query("PhalaComputation", "Sessions", [session]).value["state"]
    assert state == "WorkerCoolingDown"

    reclaim = ("PhalaStakePoolv2", "reclaim_pool_worker")
    receipt = submit(substrate, bob, *reclaim, pid=pool, worker=WORKERS[0])
    assert not receipt.is_success
    assert receipt.error_message["name"] == "CoolDownNotReady"
    devnet.call(
        lambda: setattr(devnet.chain, "time_offset_ms", devnet.chain.time_offset_ms + 60_000)
    )
    receipt = submit(substrate, bob, *reclaim, pid=pool, worker=WORKERS[0])
    assert receipt.is_success, receipt.error_message
    assert substrate.query("PhalaComputation", "Sessions", [session]).value["state"] == "Ready"

    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "remove_worker", pid=pool, worker=WORKERS[0]
    )
    assert receipt.is_success, receipt.error_message
    assert events(receipt, "PoolWorkerRemoved")
    assert substrate.query("PhalaStakePoolv2", "WorkerAssignments", [WORKERS[0]]).value is None


def test_pool_errors_are_decoded_by_name(substrate: SubstrateInterface, pool: int) -> None:
    charlie = dev_key("Charlie")
    receipt = submit(
        substrate, charlie, "PhalaStakePoolv2", "add_worker", pid=pool, pubkey=WORKERS[2]
    )
    assert not receipt.is_success
    assert receipt.error_message["name"] == "UnauthorizedPoolOwner"
    receipt = submit(
        substrate, dev_key("Alice"), "PhalaStakePoolv2", "add_worker", pid=pool, pubkey=WORKERS[2]
    )
    assert receipt.error_message["name"] == "UnauthorizedOperator"


def test_unbind_by_the_operator(substrate: SubstrateInterface, pool: int) -> None:
    alice = dev_key("Alice")
    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "add_worker", pid=pool, pubkey=WORKERS[1]
    )
    assert receipt.is_success, receipt.error_message
    session = events(receipt, "PoolWorkerAdded")[0]["session"]
    receipt = submit(substrate, alice, "PhalaComputation", "unbind", session=session)
    assert receipt.is_success, receipt.error_message
    assert substrate.query("PhalaComputation", "WorkerBindings", [WORKERS[1]]).value is None


def signed_message(seed: bytes, topic: bytes, payload: bytes, sequence: int) -> dict[str, Any]:
    public, secret = sr25519.pair_from_seed(seed)
    encoded = b"\x02" + bytes(public) + encode_bytes(topic) + encode_bytes(payload)
    signature = sr25519.sign((public, secret), encoded + u64(sequence))
    return {
        "message": {
            "sender": {"Worker": "0x" + bytes(public).hex()},
            "destination": "0x" + topic.hex(),
            "payload": "0x" + payload.hex(),
        },
        "sequence": sequence,
        "signature": "0x" + bytes(signature).hex(),
    }


def test_register_then_bench_report_sets_initial_score(
    devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    seed, pubkey = WORKER_SEEDS[3], WORKERS[3]
    info = {
        "version": 1,
        "machine_id": "0x01",
        "pubkey": pubkey,
        "ecdh_pubkey": pubkey,
        "genesis_block_hash": substrate.get_block_hash(0),
        "features": [1, 4],
        "operator": dev_key("Alice").ss58_address,
        "para_id": substrate.query("ParachainInfo", "ParachainId").value,
        "max_consensus_version": 0,
    }
    receipt = submit(
        substrate,
        dev_key("Charlie"),
        "PhalaRegistry",
        "register_worker_v2",
        pruntime_info=info,
        attestation=None,
    )
    assert receipt.is_success, receipt.error_message
    assert events(receipt, "WorkerAdded")
    outbound = substrate.query("PhalaMq", "OutboundMessages", block_hash=receipt.block_hash).value
    assert outbound and outbound[0]["destination"] == "phala/system/worker"
    worker = substrate.query("PhalaRegistry", "Workers", [pubkey]).value
    assert worker["initial_score"] is None
    assert substrate.query("PhalaRegistry", "WorkerAddedAt", [pubkey]).value > 0

    origin = "0x02" + pubkey[2:]
    sequence = substrate.rpc_request("pha_getMqNextSequence", [origin])["result"]
    assert sequence == 0
    report = b"\x00" + u64(0) + u64(2 * 1500)
    message = signed_message(seed, b"phala/registry/event", report, sequence)
    receipt = submit(
        substrate, dev_key("Charlie"), "PhalaMq", "sync_offchain_message", signed_message=message
    )
    assert receipt.is_success, receipt.error_message
    assert events(receipt, "InitialScoreSet")
    assert substrate.query("PhalaRegistry", "Workers", [pubkey]).value["initial_score"] == 1500
    assert substrate.rpc_request("pha_getMqNextSequence", [origin])["result"] == 1

    replay = submit(
        substrate, dev_key("Charlie"), "PhalaMq", "sync_offchain_message", signed_message=message
    )
    assert replay.error_message["name"] == "BadSequence"


def test_query_map_of_phala_storage(substrate: SubstrateInterface, pool: int) -> None:
    workers = {k.value for k, _ in substrate.query_map("PhalaRegistry", "Workers")}
    assert set(WORKERS[:3]) <= workers
    assert len(list(substrate.query_map("PhalaRegistry", "WorkerAddedAt"))) >= 1
    assert len(list(substrate.query_map("PhalaComputation", "Sessions"))) >= 1
    assert len(list(substrate.query_map("PhalaStakePoolv2", "SubAccountPreimages"))) >= 1
    assert len(list(substrate.query_map("PhalaBasePool", "Pools"))) >= 1
    assert len(list(substrate.query_map("Assets", "Account"))) >= 1
    assert len(list(substrate.query_map("PhalaMq", "OffchainIngress"))) >= 1
    assert len(list(substrate.query_map("Proxy", "Proxies"))) >= 1
    assert substrate.query("PhalaComputation", "CoolDownPeriod").value == 30
