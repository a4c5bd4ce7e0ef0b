"""Every call issue 3 lists, composed, signed, submitted and waited for with
substrate-interface over the websocket in each of three wrappings: plain, as the one item
of ``Utility.force_batch``, and through ``Proxy.proxy`` by an ``Any`` delegate. Each call's
effect is checked in storage or events; a pool lifecycle strings them together."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key
from tests.functional.devnet.test_chain_phala_lifecycle import WorkerKey

PHA = 10**12
BENCH_DURATION = 1
COOL_DOWN = 20
WRAPPINGS = ("plain", "force_batch", "proxy")


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    accounts = [f"//{w}-owner" for w in WRAPPINGS] + [f"//{w}-delegate" for w in WRAPPINGS]
    genesis = {
        "balances": {name: "1000000 PHA" for name in ["//Alice", "//Bob", *accounts]},
        "phala": {"benchmark_duration": BENCH_DURATION, "cool_down_period": COOL_DOWN},
    }
    handle = DevnetChain.start(genesis, block_time="instant", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


class Caller:
    """Submits calls for ``owner`` in one wrapping and returns the call's own events."""

    def __init__(self, substrate: SubstrateInterface, wrapping: str) -> None:
        self.substrate = substrate
        self.wrapping = wrapping
        self.owner = Keypair.create_from_uri(f"//{wrapping}-owner", ss58_format=30)
        self.delegate = Keypair.create_from_uri(f"//{wrapping}-delegate", ss58_format=30)

    def __call__(self, pallet: str, function: str, **params: Any) -> list[tuple[str, str, Any]]:
        s = self.substrate
        call = s.compose_call(pallet, function, params)
        signer = self.owner
        if self.wrapping == "force_batch":
            call = s.compose_call("Utility", "force_batch", {"calls": [call]})
        elif self.wrapping == "proxy":
            call = s.compose_call(
                "Proxy",
                "proxy",
                {"real": self.owner.ss58_address, "force_proxy_type": None, "call": call},
            )
            signer = self.delegate
        receipt = s.submit_extrinsic(
            s.create_signed_extrinsic(call, signer), wait_for_inclusion=True
        )
        assert receipt.is_success, (pallet, function, receipt.error_message)
        events = [
            (e.value["module_id"], e.value["event_id"], e.value["attributes"])
            for e in receipt.triggered_events
        ]
        names = [(m, e) for m, e, _ in events]
        if self.wrapping == "force_batch":
            assert ("Utility", "ItemFailed") not in names, (function, events)
            assert ("Utility", "BatchCompleted") in names, (function, events)
        if self.wrapping == "proxy":
            (result,) = [a["result"] for m, e, a in events if (m, e) == ("Proxy", "ProxyExecuted")]
            assert result == "Ok" or "Ok" in result, (function, result)
        return events


def event(events: list[tuple[str, str, Any]], pallet: str, name: str) -> Any:
    return next(a for m, e, a in events if (m, e) == (pallet, name))


def session_state(substrate: SubstrateInterface, pubkey: str) -> str:
    session = substrate.query("PhalaComputation", "WorkerBindings", [pubkey]).value
    return str(substrate.query("PhalaComputation", "Sessions", [session]).value["state"])


def register(call: Caller, worker: WorkerKey) -> None:
    info = {
        "version": 1,
        "machine_id": "0x01",
        "pubkey": worker.pubkey,
        "ecdh_pubkey": worker.pubkey,
        "genesis_block_hash": "0x" + "00" * 32,
        "features": [1, 4],
        "operator": call.owner.ss58_address,
        "para_id": 2035,
        "max_consensus_version": 0,
    }
    events = call("PhalaRegistry", "register_worker_v2", pruntime_info=info, attestation=None)
    assert event(events, "PhalaRegistry", "WorkerAdded")
    report = b"\x00" + (0).to_bytes(8, "little") + (1500 * BENCH_DURATION).to_bytes(8, "little")
    message = worker.signed_message(b"phala/registry/event", report)
    events = call("PhalaMq", "sync_offchain_message", signed_message=message)
    assert event(events, "PhalaRegistry", "InitialScoreSet")


@pytest.mark.parametrize("wrapping", WRAPPINGS)
def test_every_call_succeeds_in_this_wrapping(
    devnet: DevnetChain, substrate: SubstrateInterface, wrapping: str
) -> None:
    call = Caller(substrate, wrapping)
    owner = call.owner.ss58_address
    if wrapping == "proxy":  # the owner itself adds its delegate
        plain = Caller(substrate, wrapping)
        plain.wrapping = "plain"
        plain("Proxy", "add_proxy", delegate=call.delegate.ss58_address, proxy_type="Any", delay=0)
    else:
        events = call(
            "Proxy",
            "add_proxy",
            delegate=dev_key("Bob").ss58_address,
            proxy_type="StakePoolManager",
            delay=0,
        )
        assert event(events, "Proxy", "ProxyAdded")["delegatee"] == dev_key("Bob").ss58_address
    bob = dev_key("Bob").ss58_address
    before = int(substrate.query("System", "Account", [bob]).value["data"]["free"])
    call("Balances", "transfer_keep_alive", dest=bob, value=PHA)
    assert int(substrate.query("System", "Account", [bob]).value["data"]["free"]) == before + PHA

    call("PhalaWrappedBalances", "wrap", amount=30_000 * PHA)
    assert substrate.query("Assets", "Account", [10000, owner]).value["balance"] == 30_000 * PHA
    pid = event(call("PhalaStakePoolv2", "create"), "PhalaStakePoolv2", "PoolCreated")["pid"]
    call("PhalaStakePoolv2", "contribute", pid=pid, amount=20_000 * PHA, as_vault=None)
    pool = substrate.query("PhalaBasePool", "Pools", [pid]).value["StakePool"]
    assert pool["basepool"]["total_value"] == 20_000 * PHA

    seed = hashlib.blake2b(f"calls-{wrapping}".encode(), digest_size=32).digest()
    spare_seed = hashlib.blake2b(f"calls-{wrapping}-spare".encode(), digest_size=32).digest()
    worker, spare = WorkerKey(seed), WorkerKey(spare_seed)
    for key in (worker, spare):
        register(call, key)
        added = call("PhalaStakePoolv2", "add_worker", pid=pid, pubkey=key.pubkey)
        assert event(added, "PhalaStakePoolv2", "PoolWorkerAdded")["worker"] == key.pubkey
        assert session_state(substrate, key.pubkey) == "Ready"

    call("PhalaStakePoolv2", "start_computing", pid=pid, worker=worker.pubkey, stake=1000 * PHA)
    assert session_state(substrate, worker.pubkey) == "WorkerIdle"
    session = substrate.query("PhalaComputation", "WorkerBindings", [worker.pubkey]).value
    restarted = call(
        "PhalaStakePoolv2", "restart_computing", pid=pid, worker=worker.pubkey, stake=2000 * PHA
    )
    assert event(restarted, "PhalaComputation", "WorkerStarted")
    assert substrate.query("PhalaComputation", "Stakes", [session]).value == 2000 * PHA
    call("PhalaStakePoolv2", "stop_computing", pid=pid, worker=worker.pubkey)
    assert session_state(substrate, worker.pubkey) == "WorkerCoolingDown"
    substrate.rpc_request("devnet_advanceTime", [COOL_DOWN + 1])
    call("PhalaStakePoolv2", "reclaim_pool_worker", pid=pid, worker=worker.pubkey)
    assert session_state(substrate, worker.pubkey) == "Ready"
    call("PhalaStakePoolv2", "remove_worker", pid=pid, worker=worker.pubkey)
    assert substrate.query("PhalaStakePoolv2", "WorkerAssignments", [worker.pubkey]).value is None

    spare_session = substrate.query("PhalaComputation", "WorkerBindings", [spare.pubkey]).value
    call("PhalaComputation", "unbind", session=spare_session)
    assert substrate.query("PhalaComputation", "WorkerBindings", [spare.pubkey]).value is None
