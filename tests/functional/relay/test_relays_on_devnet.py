"""Relays over the network: the devnet chain, simulated pRuntimes, and the reconcile loop.

50 pRuntimes go from genesis to tip and stay there; each is registered, benchmarked
and, through the executor, added and computing. A stopped relay makes its worker
Unresponsive on chain and resuming it brings the worker back to WorkerIdle (the pRuntime
answers the challenges it missed while catching up, and the relay carries those
heartbeats); a restarted pRuntime is re-initialised by its relay; a stalled one shows as
STALLED; node requests do not grow with the number of workers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import PassResult
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, RelayStatus, SessionState
from poolkeeper.plan import PlanPolicy
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import RelayCondition, RelayOptions
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.command import genesis_for
from poolkeeper_devnet.pruntime import SimulatorThread

DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
WORKERS = 50
BLOCK_TIME = 0.2


def write_inventory(directory: Path, chain_url: str, endpoints: list[str]) -> Path:
    inventory = directory / "inventory"
    inventory.mkdir(parents=True)
    settings = {
        "network": "devnet",
        "chain": {"endpoints": [chain_url], "wait_for": "inclusion"},
        "secrets": {"env": "POOLKEEPER_TEST_NO_SUCH_VAR"},
        "relay": {"sync_blocks": 64, "attestation_provider": "none"},
        "state_dir": str(directory / "state"),
        "pruntime_timeout_seconds": 10,
    }
    accounts = [
        {"name": "owner", "role": "owner", "derivation": "owner"},
        {"name": "relay-signer", "role": "relay_signer", "derivation": "relay"},
    ]
    pools = [
        {
            "name": "pool-a",
            "pid": 0,
            "owner": "owner",
            "cap": "10000000 PHA",
            "commission": "5%",
            "default_stake": "3000 PHA",
        }
    ]
    workers = [
        {"name": f"w{i:02d}", "endpoint": url, "pool": "pool-a"} for i, url in enumerate(endpoints)
    ]
    doc = {"settings": settings, "accounts": accounts, "pools": pools, "workers": workers}
    # JSON is YAML: the loader reads it as is.
    (inventory / "all.yaml").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return inventory


def placeholder_inventory(directory: Path) -> Desired:
    """The inventory's accounts only (their addresses fund the genesis)."""
    return load_inventory(write_inventory(directory, "ws://127.0.0.1:1", []))


def start_world(base: Path, workers: int, seed: bytes) -> tuple[Path, DevnetChain, SimulatorThread]:
    """A devnet whose genesis funds the inventory's accounts and pool, and ``workers``
    simulated pRuntimes on one prefix port; returns the inventory directory too."""
    mnemonic = Mnemonic(DEV_PHRASE)
    draft = placeholder_inventory(base / "draft")
    ring = KeyRing(draft, mnemonic)
    addresses = {a.name: ring.address(a.name) for a in draft.accounts}
    genesis: dict[str, Any] = genesis_for(draft, addresses, cool_down=60)
    # The draft has no workers: give the pool stake for all of them.
    genesis["phala"]["pools"][0]["free_stake"] = "1000000 PHA"
    genesis["phala"].update(benchmark_duration=3, heartbeat_interval=5, unresponsive_after=15)
    genesis["finality_lag"] = 1
    chain = DevnetChain.start(genesis, block_time=BLOCK_TIME, finality_lag=1)
    sim = SimulatorThread(workers, prefix_port=0, seed=seed, score=1000).start()
    inventory = write_inventory(
        base / "live", chain.url, [sim.prefix_url(i) for i in range(workers)]
    )
    return inventory, chain, sim


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Desired, DevnetChain, SimulatorThread]]:
    inventory, chain, sim = start_world(tmp_path_factory.mktemp("relays"), WORKERS, b"relay-test")
    try:
        yield load_inventory(inventory), chain, sim
    finally:
        sim.stop()
        chain.stop()


def worker_states(desired: Desired, observed: Observed) -> dict[str, SessionState | None]:
    out: dict[str, SessionState | None] = {}
    for worker in desired.workers:
        seen = observed.pruntimes.get(worker.endpoint)
        pubkey = seen.info.public_key if seen and seen.info else None
        on_chain = observed.chain_workers.get(pubkey.lower()) if pubkey else None
        out[worker.name] = on_chain.session_state if on_chain else None
    return out


async def wait_for(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_fifty_workers_sync_register_compute_and_unresponsive_when_relay_stops(
    world: tuple[Desired, DevnetChain, SimulatorThread], tmp_path: Path
) -> None:
    desired, _chain, sim = world
    rec = build_reconciler(
        desired,
        mnemonic=Mnemonic(DEV_PHRASE),
        state_dir=tmp_path,
        relay_idle_seconds=BLOCK_TIME / 2,
    )
    try:
        # Genesis to tip, registered, scored, added and computing, for all 50.
        def all_computing(result: PassResult) -> bool:
            states = worker_states(rec.desired, result.observed)
            return all(s is SessionState.WORKER_IDLE for s in states.values())

        last = await rec.converge(PlanPolicy(), timeout=120, interval=1.0, until=all_computing)
        states = worker_states(rec.desired, last.observed)
        assert all_computing(last), states
        for i in range(WORKERS):
            worker = sim.worker(i)
            assert worker.initialized
        for name, info in last.observed.chain_workers.items():
            assert info.initial_score, f"{name} has no benchmark score on chain"

        # Kept at the tip for 100 blocks: every pRuntime within a few blocks of the head.
        start = (await rec.observe()).head.finalized_number
        lags: list[int] = []
        while True:
            observed = await rec.observe()
            head = observed.head.finalized_number
            for worker in rec.desired.workers:
                seen = observed.pruntimes[worker.endpoint].info
                assert seen is not None
                lags.append(head + 1 - seen.blocknum)
            if head - start >= 100:
                break
            await asyncio.sleep(2.0)
        assert max(lags) <= 8, f"a relay fell behind the tip by {max(lags)} blocks"
        states = worker_states(rec.desired, observed)
        assert all(s is SessionState.WORKER_IDLE for s in states.values()), states

        wanted = rec.relay_plan(observed)

        # Stopping one relay: its worker stops answering heartbeats → Unresponsive.
        victim = "w07"
        rec.relays.reconcile({k: v for k, v in wanted.items() if k != victim})

        async def victim_state(expected: SessionState) -> bool:
            return worker_states(rec.desired, await rec.observe())[victim] is expected

        await wait_for(
            lambda: victim_state(SessionState.WORKER_UNRESPONSIVE), 30, f"{victim} Unresponsive"
        )
        # Resuming the relay recovers it: the heartbeats it owes reach the chain.
        rec.relays.reconcile(wanted)
        await wait_for(lambda: victim_state(SessionState.WORKER_IDLE), 30, f"{victim} recovered")
        others = worker_states(rec.desired, await rec.observe())
        assert all(s is SessionState.WORKER_IDLE for s in others.values()), others
    finally:
        await rec.close()


async def test_restarted_pruntime_resyncs_and_stalled_one_is_visible() -> None:
    chain = DevnetChain.start("dev", block_time=BLOCK_TIME, finality_lag=1)
    rpc = AsyncRpc(chain.url)
    try:
        with SimulatorThread(3, prefix_port=0, seed=b"faults") as sim:
            async with PRuntimeTransport(max_in_flight=16, timeout=10) as transport:
                supervisor = RelaySupervisor(
                    RelaySource(rpc), transport, lambda _name: None, idle_seconds=0.05
                )
                supervisor.reconcile(
                    {f"f{i}": (sim.prefix_url(i), RelayOptions(sync_blocks=64)) for i in range(3)}
                )
                try:
                    await _restart_and_stall(supervisor, sim, rpc)
                finally:
                    await supervisor.stop_all()
    finally:
        await rpc.close()
        chain.stop()


async def _restart_and_stall(
    supervisor: RelaySupervisor, sim: SimulatorThread, rpc: AsyncRpc
) -> None:
    def at_tip(name: str) -> bool:
        relay = supervisor.relay(name)
        return relay is not None and relay.status.condition is RelayCondition.AT_TIP

    async def all_at_tip() -> bool:
        return all(at_tip(f"f{i}") for i in range(3))

    await wait_for(all_at_tip, 30, "three workers at the tip")
    await asyncio.sleep(2)  # let the chain move on
    sim.set_fault(1, "restart")
    relay = supervisor.relay("f1")
    assert relay is not None

    async def resynced() -> bool:
        return relay.status.restarts_seen >= 1 and at_tip("f1") and relay.status.blocknum > 5

    await wait_for(resynced, 30, "restarted pRuntime re-initialised and at the tip")
    assert sim.worker(1).initialized

    sim.set_fault(2, "stall")

    async def stalled() -> bool:
        return supervisor.statuses().get("f2") is RelayStatus.STALLED

    await wait_for(stalled, 30, "stalled pRuntime reported STALLED")
    sim.set_fault(2, "clear")

    async def moving() -> bool:
        return at_tip("f2")

    await wait_for(moving, 30, "stalled pRuntime back at the tip")


async def _sync_range(chain_url: str, sim: SimulatorThread, workers: list[int], tip: int) -> int:
    """Sync ``workers`` from genesis to ``tip`` through one fresh source; node requests."""
    rpc = AsyncRpc(chain_url)
    source = RelaySource(rpc)
    async with PRuntimeTransport(max_in_flight=200, timeout=10) as transport:
        supervisor = RelaySupervisor(source, transport, lambda _name: None, idle_seconds=0.05)
        for i in workers:
            sim.set_fault(i, "restart")
        supervisor.reconcile(
            {f"s{i}": (sim.prefix_url(i), RelayOptions(sync_blocks=64)) for i in workers}
        )

        async def done() -> bool:
            return all(
                (r := supervisor.relay(f"s{i}")) is not None and r.status.blocknum > tip
                for i in workers
            )

        try:
            await wait_for(done, 60, f"{len(workers)} workers synced to {tip}")
        finally:
            await supervisor.stop_all()
            await rpc.close()
    return source.fetches


async def test_node_requests_do_not_grow_with_workers() -> None:
    """1 and 100 workers syncing the same range cost the node (almost) the same."""
    chain = DevnetChain.start("dev", block_time="instant", finality_lag=0)
    try:
        for _ in range(300):
            chain.new_block()
        with SimulatorThread(100, prefix_port=0, seed=b"sharing") as sim:
            one = await _sync_range(chain.url, sim, [0], 250)
            many = await _sync_range(chain.url, sim, list(range(100)), 250)
    finally:
        chain.stop()
    assert one > 0
    assert abs(many - one) <= 0.10 * one, f"1 worker: {one} requests, 100 workers: {many}"


async def test_relays_at_the_tip_are_fed_by_the_tip_feeder() -> None:
    """Parked relays get each new block from the feeder (SyncHeader, DispatchBlocks), their
    own tasks idle; the pRuntimes count exactly two requests per block."""
    chain = DevnetChain.start("dev", block_time="instant", finality_lag=0)
    rpc = AsyncRpc(chain.url)
    source = RelaySource(rpc)
    workers = list(range(10))
    try:
        for _ in range(20):
            chain.new_block()
        with SimulatorThread(len(workers), prefix_port=0, seed=b"feeder") as sim:
            async with PRuntimeTransport(max_in_flight=100, timeout=10) as transport:
                supervisor = RelaySupervisor(source, transport, lambda _name: None)
                supervisor.reconcile(
                    {f"f{i}": (sim.prefix_url(i), RelayOptions()) for i in workers}
                )
                feeder = supervisor.feeder
                assert feeder is not None

                async def parked() -> bool:
                    return feeder.parked == len(workers) and not feeder.busy

                try:
                    await wait_for(parked, 60, "relays parked")
                    relays = [supervisor.relay(f"f{i}") for i in workers]
                    steps = [r.status.steps for r in relays if r is not None]
                    before = sim.requests()
                    first = sim.worker(0).blocknum
                    assert all(sim.worker(i).blocknum == first for i in workers)
                    for block in range(1, 6):
                        chain.new_block()

                        async def fed(block: int = block) -> bool:
                            synced = all(sim.worker(i).blocknum == first + block for i in workers)
                            return synced and await parked()

                        await wait_for(fed, 30, f"every pRuntime fed block {first + block - 1}")
                    after = sim.requests()
                    for i in workers:
                        counts = {
                            method: n - before[i].get(method, 0)
                            for method, n in after[i].items()
                            if n - before[i].get(method, 0)
                        }
                        assert counts == {"SyncHeader": 5, "DispatchBlocks": 5}, counts
                    assert feeder.requests == 2 * 5 * len(workers)
                    assert [r.status.steps for r in relays if r is not None] == steps
                finally:
                    await supervisor.stop_all()
    finally:
        await rpc.close()
        chain.stop()
