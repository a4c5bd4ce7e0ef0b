"""Relays in parachain mode, over the network: a devnet relay chain + parachain (two
websocket endpoints), simulated pRuntimes initialised with ``is_parachain``, and the
product's ``ParachainSource`` / ``WorkerRelay``.

Mirrors the solo-mode tests: workers from genesis to tip, registered and computing
through the reconcile loop and kept at the tip; the pRuntime's refusals (wrong
``Paras.Heads`` proof, headers the proof does not end at, ``ChainModeMismatch`` on a
solo pRuntime, a non-atomic ``SyncCombinedHeaders``); node requests that do not grow
with the number of workers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import ParachainSource
from poolkeeper.errors import PRuntimeSyncRejected
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import PassResult, Reconciler
from poolkeeper.model.observed import SessionState
from poolkeeper.plan import PlanPolicy
from poolkeeper.pruntime import InitRuntimeRequest, PRuntimeTransport
from poolkeeper.pruntime.messages import CombinedHeadersToSync
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import RelayCondition, RelayOptions
from poolkeeper_devnet.chain.parachain import RELAY_LEAD, DevnetParachain
from poolkeeper_devnet.command import genesis_for
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime.minichain import MiniChain
from tests.functional.relay.test_relays_on_devnet import (
    DEV_PHRASE,
    placeholder_inventory,
    wait_for,
    worker_states,
    write_inventory,
)

WORKERS = 4
BLOCK_TIME = 0.2


def _parachain_inventory(directory: Path, para_url: str, relay_url: str, urls: list[str]) -> Path:
    inventory = write_inventory(directory, para_url, urls)
    path = inventory / "all.yaml"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["settings"]["chain"]["relaychain_endpoints"] = [relay_url]
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return inventory


async def test_parachain_workers_sync_register_compute_and_stay_at_tip(tmp_path: Path) -> None:
    mnemonic = Mnemonic(DEV_PHRASE)
    draft = placeholder_inventory(tmp_path / "draft")
    ring = KeyRing(draft, mnemonic)
    addresses = {a.name: ring.address(a.name) for a in draft.accounts}
    genesis: dict[str, Any] = genesis_for(draft, addresses, cool_down=60)
    genesis["phala"]["pools"][0]["free_stake"] = "1000000 PHA"
    genesis["phala"].update(benchmark_duration=3, heartbeat_interval=5, unresponsive_after=30)
    network = DevnetParachain.start(genesis, block_time=BLOCK_TIME, finality_lag=1)
    sim = SimulatorThread(WORKERS, prefix_port=0, seed=b"parachain-test", score=1000).start()
    try:
        inventory = _parachain_inventory(
            tmp_path / "live",
            network.url,
            network.relay_url,
            [sim.prefix_url(i) for i in range(WORKERS)],
        )
        desired = load_inventory(inventory)
        assert desired.settings.chain.is_parachain
        rec = build_reconciler(
            desired, mnemonic=mnemonic, state_dir=tmp_path, relay_idle_seconds=1.0
        )
        assert isinstance(rec.source, ParachainSource)
        try:
            await _converge_and_keep(rec, sim)
        finally:
            await rec.close()
    finally:
        sim.stop()
        network.stop()


async def _converge_and_keep(rec: Reconciler, sim: SimulatorThread) -> None:
    def all_computing(result: PassResult) -> bool:
        states = worker_states(rec.desired, result.observed)
        return all(s is SessionState.WORKER_IDLE for s in states.values())

    last = await rec.converge(PlanPolicy(), timeout=90, interval=1.0, until=all_computing)
    assert all_computing(last), worker_states(rec.desired, last.observed)
    for info in last.observed.chain_workers.values():
        assert info.initial_score, "a worker has no benchmark score on chain"
    for i in range(WORKERS):
        worker = sim.worker(i)
        assert worker.is_parachain
        assert worker.para_headernum > 1
        # The relay-chain counter runs ahead of the parachain's (RELAY_LEAD blocks).
        assert worker.headernum > worker.para_headernum

    # Kept at the tip: every pRuntime within a few parachain blocks of the finalized head.
    start = (await rec.observe()).head.finalized_number
    lags: list[int] = []
    while True:
        observed = await rec.observe()
        head = observed.head.finalized_number
        for worker in rec.desired.workers:
            seen = observed.pruntimes[worker.endpoint].info
            assert seen is not None
            lags.append(head + 1 - seen.blocknum)
        if head - start >= 25:
            break
        await asyncio.sleep(1.0)
    assert max(lags) <= 8, f"a relay fell behind the tip by {max(lags)} blocks"
    assert all_computing(await rec.reconcile_once(PlanPolicy(), execute=False))


@pytest.fixture(scope="module")
def built_network() -> Any:
    network = DevnetParachain.start("dev", block_time="instant", finality_lag=1)
    try:
        for _ in range(40):
            network.new_block()
        yield network
    finally:
        network.stop()


async def test_wrong_proof_mismatched_headers_and_non_atomic_combined_sync(
    built_network: DevnetParachain,
) -> None:
    para, relay = AsyncRpc(built_network.url), AsyncRpc(built_network.relay_url)
    source = ParachainSource(para, relay)
    try:
        with SimulatorThread(2, prefix_port=0, seed=b"para-errors") as sim:
            async with PRuntimeTransport(max_in_flight=8, timeout=10) as transport:
                await _proof_checks(source, transport, sim)
    finally:
        await para.close()
        await relay.close()


async def _init_parachain(client: Any, source: ParachainSource) -> None:
    genesis = await source.genesis()
    await client.init_runtime(
        InitRuntimeRequest(
            encoded_genesis_info=genesis.genesis_info,
            encoded_genesis_state=genesis.genesis_state,
            is_parachain=True,
        )
    )


async def _proof_checks(
    source: ParachainSource, transport: PRuntimeTransport, sim: SimulatorThread
) -> None:
    client = transport.client(sim.prefix_url(0))
    await _init_parachain(client, source)
    start = await source.start_header()
    assert start == RELAY_LEAD - 1
    info = await client.get_info()
    assert (info.headernum, info.para_headernum, info.blocknum) == (start + 1, 0, 1)

    relay_headers = await source.headers_request(info.headernum)
    assert relay_headers is not None
    relay_last = relay_headers[1]
    assert await client.sync_header(relay_headers[0]) == relay_last
    right = await source.para_headers_request(relay_last, 0)
    older = await source.para_headers_request(relay_last - 5, 0)
    assert right is not None and older is not None and older.last < right.last

    # A proof read at another relay block does not lead to the synced header's root.
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_para_header(right.encoded_headers, older.proof)
    assert caught.value.reason == "StorageProofFailed", caught.value.message
    # A tampered value does not either.
    tampered = (right.proof[0][:-1] + bytes([right.proof[0][-1] ^ 1]), *right.proof[1:])
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_para_header(right.encoded_headers, tampered)
    assert caught.value.reason == "StorageProofFailed", caught.value.message
    # Headers that stop before the proven head.
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_para_header(older.encoded_headers, right.proof)
    assert caught.value.reason == "HeaderHashMismatch", caught.value.message
    assert (await client.get_info()).para_headernum == 0

    assert await client.sync_para_header(right.encoded_headers, right.proof) == right.last
    info = await client.get_info()
    assert info.para_headernum == right.last + 1
    blocks = await source.blocks_request(1, right.last)
    assert await client.dispatch_blocks(blocks) == right.last

    # SyncCombinedHeaders is not atomic: the relay part stays synced when the parachain
    # part is refused.
    other = transport.client(sim.prefix_url(1))
    await _init_parachain(other, source)
    combined = await source.combined_request(start + 1, 0)
    assert combined is not None and combined.parachain_last == right.last
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await other.sync_combined_headers(
            CombinedHeadersToSync(
                encoded_relaychain_headers=combined.encoded_relaychain_headers,
                encoded_parachain_headers=combined.encoded_parachain_headers,
                proof=older.proof,
            )
        )
    assert caught.value.reason == "StorageProofFailed"
    info = await other.get_info()
    assert (info.headernum, info.para_headernum) == (combined.relaychain_last + 1, 0)

    # Workers at the same height get the very same request bytes.
    again = await asyncio.gather(*(source.combined_request(start + 1, 0) for _ in range(3)))
    assert all(c is combined for c in again)


async def test_solo_pruntime_refuses_parachain_headers(built_network: DevnetParachain) -> None:
    para, relay = AsyncRpc(built_network.url), AsyncRpc(built_network.relay_url)
    source = ParachainSource(para, relay)
    solo = MiniChain()
    try:
        with SimulatorThread(1, prefix_port=0, seed=b"para-mode") as sim:
            async with PRuntimeTransport(max_in_flight=8, timeout=10) as transport:
                client = transport.client(sim.prefix_url(0))
                await client.init_runtime(
                    InitRuntimeRequest(
                        encoded_genesis_info=solo.genesis_info(),
                        encoded_genesis_state=solo.genesis_state(),
                    )
                )
                heads = await source.para_headers_request(10, 0)
                assert heads is not None
                with pytest.raises(PRuntimeSyncRejected) as caught:
                    await client.sync_para_header(heads.encoded_headers, heads.proof)
                assert caught.value.reason == "ChainModeMismatch"
                solo.add_block()
                with pytest.raises(PRuntimeSyncRejected) as caught:
                    await client.sync_combined_headers(
                        CombinedHeadersToSync(
                            encoded_relaychain_headers=solo.headers_to_sync(1, 1),
                            encoded_parachain_headers=heads.encoded_headers,
                            proof=heads.proof,
                        )
                    )
                assert caught.value.reason == "ChainModeMismatch"
                # Relay part first: the solo headers were taken before the refusal.
                assert (await client.get_info()).headernum == 2
    finally:
        await para.close()
        await relay.close()


async def test_relays_at_the_tip_wait_for_the_next_relay_chain_block(
    built_network: DevnetParachain,
) -> None:
    para, relay = AsyncRpc(built_network.url), AsyncRpc(built_network.relay_url)
    source = ParachainSource(para, relay, head_ttl=0.05)
    try:
        relay_final = await source.relaychain.finalized_number()
        # A pRuntime synced to the relay chain's finalized head waits for the next relay
        # block (the parachain's own numbers are lower: they must not be compared).
        waiting = asyncio.ensure_future(source.wait_finalized_above(relay_final, 10))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await asyncio.to_thread(built_network.new_block)
        assert await asyncio.wait_for(waiting, 5)
    finally:
        await para.close()
        await relay.close()


async def _sync_range(network: DevnetParachain, sim: SimulatorThread, workers: list[int]) -> int:
    """Sync ``workers`` from genesis to the tip through one fresh source; node requests."""
    para, relay = AsyncRpc(network.url), AsyncRpc(network.relay_url)
    source = ParachainSource(para, relay)
    async with PRuntimeTransport(max_in_flight=100, timeout=10) as transport:
        supervisor = RelaySupervisor(source, transport, lambda _name: None, idle_seconds=0.05)
        for i in workers:
            sim.set_fault(i, "restart")
        supervisor.reconcile(
            {f"s{i}": (sim.prefix_url(i), RelayOptions(sync_blocks=64)) for i in workers}
        )

        async def done() -> bool:
            return all(
                (r := supervisor.relay(f"s{i}")) is not None
                and r.status.condition is RelayCondition.AT_TIP
                for i in workers
            )

        try:
            await wait_for(done, 60, f"{len(workers)} parachain workers at the tip")
        finally:
            await supervisor.stop_all()
            await para.close()
            await relay.close()
    return source.node_requests


async def test_node_requests_do_not_grow_with_workers_in_parachain_mode() -> None:
    """1 and 20 workers syncing the same range cost the nodes (almost) the same."""
    network = DevnetParachain.start("dev", block_time="instant", finality_lag=0)
    try:
        for _ in range(200):
            network.new_block()
        with SimulatorThread(20, prefix_port=0, seed=b"para-sharing") as sim:
            one = await _sync_range(network, sim, [0])
            many = await _sync_range(network, sim, list(range(20)))
            assert sim.worker(0).blocknum == sim.worker(19).blocknum > 190
    finally:
        network.stop()
    assert one > 0
    assert abs(many - one) <= 0.10 * one, f"1 worker: {one} requests, 20 workers: {many}"


async def test_relays_at_the_tip_are_fed_by_the_tip_feeder_in_parachain_mode() -> None:
    """Parked relays get each new parachain block from the feeder (SyncCombinedHeaders or
    SyncParaHeader, then DispatchBlocks) without stepping by themselves."""
    network = DevnetParachain.start("dev", block_time="instant", finality_lag=0)
    para, relay_rpc = AsyncRpc(network.url), AsyncRpc(network.relay_url)
    source = ParachainSource(para, relay_rpc)
    workers = list(range(8))
    try:
        for _ in range(20):
            network.new_block()
        with SimulatorThread(len(workers), prefix_port=0, seed=b"para-feeder") as sim:
            async with PRuntimeTransport(max_in_flight=100, timeout=10) as transport:
                supervisor = RelaySupervisor(source, transport, lambda _name: None)
                supervisor.reconcile(
                    {f"f{i}": (sim.prefix_url(i), RelayOptions()) for i in workers}
                )
                feeder = supervisor.feeder
                assert feeder is not None
                try:
                    await wait_for(
                        lambda: _true(feeder.parked == len(workers)), 60, "relays parked"
                    )
                    steps = {i: _relay(supervisor, i).status.steps for i in workers}
                    first = min(sim.worker(i).blocknum for i in workers)
                    for _ in range(5):
                        network.new_block()
                        await asyncio.sleep(0.3)
                    # a parachain block reaches pRuntimes once a relay block proves it:
                    # the last one or two may wait for the next relay block
                    await wait_for(
                        lambda: _true(
                            all(sim.worker(i).blocknum >= first + 4 for i in workers)
                            and feeder.parked == len(workers)
                            and not feeder.busy
                        ),
                        30,
                        f"every pRuntime 4 parachain blocks past #{first}",
                    )
                    assert feeder.requests >= 2 * 4 * len(workers)
                    # their own tasks did (almost) nothing: a GetInfo timer at most
                    assert all(_relay(supervisor, i).status.steps - steps[i] <= 1 for i in workers)
                finally:
                    await supervisor.stop_all()
    finally:
        await para.close()
        await relay_rpc.close()
        network.stop()


def _relay(supervisor: RelaySupervisor, index: int) -> Any:
    relay = supervisor.relay(f"f{index}")
    assert relay is not None
    return relay


async def _true(value: bool) -> bool:
    return value
