"""substrate-interface, unmodified, driving the Phala pallets of the devnet over a websocket:
wrap, create, contribute, register_worker_v2, sync_offchain_message (BenchReport and
heartbeats signed by a worker key), add_worker, start/stop/reclaim/remove, plain, inside
force_batch and inside Proxy.proxy by a StakePoolManager delegate; errors by name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import sr25519
from substrateinterface import Keypair, SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

PHA = 10**12
BENCH_DURATION = 1
COOL_DOWN = 30
WORKER_SEED = hashlib.blake2b(b"functional-worker", digest_size=32).digest()
GENESIS_WORKER_SEED = hashlib.blake2b(b"functional-genesis-worker", digest_size=32).digest()


def worker_pubkey(seed: bytes) -> str:
    return "0x" + bytes(sr25519.pair_from_seed(seed)[0]).hex()


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    genesis = {
        "parachain_id": 2035,
        "balances": {f"//{n}": "1000000 PHA" for n in ("Alice", "Bob", "Manager", "Relayer")},
        "proxies": [{"real": "//Alice", "delegate": "//Manager", "proxy_type": "StakePoolManager"}],
        "phala": {
            "benchmark_duration": BENCH_DURATION,
            "cool_down_period": COOL_DOWN,
            "heartbeat_interval": 2,
            "unresponsive_after": 4,
            "pools": [
                {
                    "owner": "//Bob",
                    "free_stake": "5000 PHA",
                    "workers": [
                        {"pubkey": worker_pubkey(GENESIS_WORKER_SEED), "initial_score": 1500}
                    ],
                }
            ],
        },
    }
    handle = DevnetChain.start(genesis, block_time="instant", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


def submit(
    substrate: SubstrateInterface, key: Keypair, module: str, call: str, params: dict[str, Any]
) -> Any:
    extrinsic = substrate.create_signed_extrinsic(substrate.compose_call(module, call, params), key)
    return substrate.submit_extrinsic(extrinsic, wait_for_inclusion=True)


def events(receipt: Any) -> list[tuple[str, str, Any]]:
    return [
        (e.value["module_id"], e.value["event_id"], e.value["attributes"])
        for e in receipt.triggered_events
    ]


def module_error_name(substrate: SubstrateInterface, error: dict[str, Any]) -> str:
    """'Pallet.Error' of a DispatchError::Module value inside an event."""
    module = error["Module"]
    index = module["index"]
    raw = module["error"]
    code = bytes.fromhex(raw[2:])[0] if isinstance(raw, str) else int(raw)
    for pallet in substrate.metadata.pallets:
        if pallet.value["index"] == index:
            return f"{pallet.name}.{pallet.errors[code].name}"
    raise AssertionError(f"no pallet {index}")


class WorkerKey:
    def __init__(self, seed: bytes) -> None:
        self.keypair = sr25519.pair_from_seed(seed)
        self.pubkey = "0x" + bytes(self.keypair[0]).hex()
        self.sequence = 0

    def signed_message(self, topic: bytes, payload: bytes) -> dict[str, Any]:
        sender = b"\x02" + bytes(self.keypair[0])
        encoded = sender + _bytes(topic) + _bytes(payload) + self.sequence.to_bytes(8, "little")
        signature = bytes(sr25519.sign(self.keypair, encoded))
        message = {
            "message": {
                "sender": {"Worker": self.pubkey},
                "destination": "0x" + topic.hex(),
                "payload": "0x" + payload.hex(),
            },
            "sequence": self.sequence,
            "signature": "0x" + signature.hex(),
        }
        self.sequence += 1
        return message


def _bytes(raw: bytes) -> bytes:
    assert len(raw) < 64
    return bytes([len(raw) << 2]) + raw


def sync(substrate: SubstrateInterface, worker: WorkerKey, topic: bytes, payload: bytes) -> Any:
    receipt = submit(
        substrate,
        dev_key("Relayer"),
        "PhalaMq",
        "sync_offchain_message",
        {"signed_message": worker.signed_message(topic, payload)},
    )
    assert receipt.is_success, receipt.error_message
    return receipt


def session_state(substrate: SubstrateInterface, pubkey: str) -> str:
    session = substrate.query("PhalaComputation", "WorkerBindings", [pubkey]).value
    return str(substrate.query("PhalaComputation", "Sessions", [session]).value["state"])


def test_pool_lifecycle_through_substrate_interface(
    devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    alice, bob = dev_key("Alice"), dev_key("Bob")
    worker = WorkerKey(WORKER_SEED)

    receipt = submit(substrate, alice, "PhalaWrappedBalances", "wrap", {"amount": 20_000 * PHA})
    assert receipt.is_success, receipt.error_message
    receipt = submit(substrate, alice, "PhalaStakePoolv2", "create", {})
    created = next(a for m, e, a in events(receipt) if e == "PoolCreated")
    pid = created["pid"]
    assert pid == 1  # pool 0 comes from genesis
    receipt = submit(
        substrate,
        alice,
        "PhalaStakePoolv2",
        "contribute",
        {"pid": pid, "amount": 10_000 * PHA, "as_vault": None},
    )
    assert receipt.is_success, receipt.error_message
    pool = substrate.query("PhalaBasePool", "Pools", [pid]).value["StakePool"]
    free = substrate.query("Assets", "Account", [10000, pool["basepool"]["pool_account_id"]]).value
    assert free["balance"] == 10_000 * PHA

    info = {
        "version": 1,
        "machine_id": "0x01",
        "pubkey": worker.pubkey,
        "ecdh_pubkey": worker.pubkey,
        "genesis_block_hash": "0x" + "00" * 32,
        "features": [1, 4],
        "operator": alice.ss58_address,
        "para_id": 2035,
        "max_consensus_version": 0,
    }
    receipt = submit(
        substrate,
        dev_key("Relayer"),
        "PhalaRegistry",
        "register_worker_v2",
        {"pruntime_info": info, "attestation": None},
    )
    assert receipt.is_success, receipt.error_message
    assert ("PhalaRegistry", "WorkerAdded") in [(m, e) for m, e, _ in events(receipt)]

    # adding before the benchmark fails with its real name
    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "add_worker", {"pid": pid, "pubkey": worker.pubkey}
    )
    assert not receipt.is_success
    assert receipt.error_message["name"] == "BenchmarkMissing"

    report = b"\x00" + (0).to_bytes(8, "little") + (1800 * BENCH_DURATION).to_bytes(8, "little")
    receipt = sync(substrate, worker, b"phala/registry/event", report)
    assert ("PhalaRegistry", "InitialScoreSet") in [(m, e) for m, e, _ in events(receipt)]
    assert (
        substrate.query("PhalaRegistry", "Workers", [worker.pubkey]).value["initial_score"] == 1800
    )
    assert substrate.query("PhalaMq", "OffchainIngress", [{"Worker": worker.pubkey}]).value == 1

    receipt = submit(
        substrate, bob, "PhalaStakePoolv2", "add_worker", {"pid": pid, "pubkey": worker.pubkey}
    )
    assert receipt.error_message["name"] == "UnauthorizedOperator"
    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "add_worker", {"pid": pid, "pubkey": worker.pubkey}
    )
    assert receipt.is_success, receipt.error_message
    added = next(a for m, e, a in events(receipt) if e == "PoolWorkerAdded")
    assert session_state(substrate, worker.pubkey) == "Ready"

    # start inside force_batch, next to an item that fails
    too_much = substrate.compose_call(
        "PhalaStakePoolv2",
        "start_computing",
        {"pid": pid, "worker": worker.pubkey, "stake": 50_000 * PHA},
    )
    start = substrate.compose_call(
        "PhalaStakePoolv2",
        "start_computing",
        {"pid": pid, "worker": worker.pubkey, "stake": 1000 * PHA},
    )
    batch = substrate.compose_call("Utility", "force_batch", {"calls": [too_much, start]})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(batch, alice), wait_for_inclusion=True
    )
    assert receipt.is_success, receipt.error_message
    names = [(m, e) for m, e, _ in events(receipt)]
    assert ("PhalaComputation", "WorkerStarted") in names
    assert ("PhalaStakePoolv2", "WorkingStarted") in names
    failed = next(a for m, e, a in events(receipt) if e == "ItemFailed")
    assert module_error_name(substrate, failed["error"]) == "PhalaStakePoolv2.InsufficientFreeStake"
    assert session_state(substrate, worker.pubkey) == "WorkerIdle"
    assert substrate.query("PhalaComputation", "Stakes", [added["session"]]).value == 1000 * PHA

    # without heartbeats the worker turns unresponsive; a heartbeat brings it back
    for _ in range(5):
        assert submit(
            substrate,
            bob,
            "Balances",
            "transfer_keep_alive",
            {"dest": alice.ss58_address, "value": PHA},
        ).is_success
    assert session_state(substrate, worker.pubkey) == "WorkerUnresponsive"
    head = substrate.get_block_header()["header"]["number"]
    heartbeat = (
        b"\x01"
        + head.to_bytes(4, "little")
        + (0).to_bytes(8, "little")
        + (5000).to_bytes(8, "little")
    )
    receipt = sync(substrate, worker, b"phala/mining/report", heartbeat)
    assert ("PhalaComputation", "WorkerExitUnresponsive") in [(m, e) for m, e, _ in events(receipt)]
    assert session_state(substrate, worker.pubkey) == "WorkerIdle"

    # stop through the StakePoolManager proxy
    stop = substrate.compose_call(
        "PhalaStakePoolv2", "stop_computing", {"pid": pid, "worker": worker.pubkey}
    )
    proxy = substrate.compose_call(
        "Proxy", "proxy", {"real": alice.ss58_address, "force_proxy_type": None, "call": stop}
    )
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(proxy, dev_key("Manager")), wait_for_inclusion=True
    )
    executed = next(a for m, e, a in events(receipt) if e == "ProxyExecuted")
    assert executed["result"] == "Ok" or "Ok" in executed["result"]
    assert session_state(substrate, worker.pubkey) == "WorkerCoolingDown"

    reclaim = {"pid": pid, "worker": worker.pubkey}
    receipt = submit(substrate, bob, "PhalaStakePoolv2", "reclaim_pool_worker", reclaim)
    assert receipt.error_message["name"] == "CoolDownNotReady"
    substrate.rpc_request("devnet_advanceTime", [COOL_DOWN + 1])
    receipt = submit(substrate, bob, "PhalaStakePoolv2", "reclaim_pool_worker", reclaim)
    assert receipt.is_success, receipt.error_message
    assert session_state(substrate, worker.pubkey) == "Ready"
    free = substrate.query("Assets", "Account", [10000, pool["basepool"]["pool_account_id"]]).value
    assert free["balance"] == 10_000 * PHA

    receipt = submit(
        substrate, alice, "PhalaStakePoolv2", "remove_worker", {"pid": pid, "worker": worker.pubkey}
    )
    assert receipt.is_success, receipt.error_message
    assert substrate.query("PhalaStakePoolv2", "WorkerAssignments", [worker.pubkey]).value is None


def test_genesis_pool_is_queryable_with_query_map(substrate: SubstrateInterface) -> None:
    pubkey = worker_pubkey(GENESIS_WORKER_SEED)
    workers = {k.value: v.value for k, v in substrate.query_map("PhalaRegistry", "Workers")}
    assert workers[pubkey]["initial_score"] == 1500
    assert workers[pubkey]["operator"] == dev_key("Bob").ss58_address
    bindings = {
        k.value: v.value for k, v in substrate.query_map("PhalaComputation", "WorkerBindings")
    }
    sessions = {k.value: v.value for k, v in substrate.query_map("PhalaComputation", "Sessions")}
    assert sessions[bindings[pubkey]]["state"] == "Ready"
    assert substrate.query("PhalaStakePoolv2", "WorkerAssignments", [pubkey]).value == 0
    assert substrate.query("PhalaComputation", "CoolDownPeriod").value == COOL_DOWN
    assert substrate.query("PhalaBasePool", "PoolCount").value >= 1
