"""pRuntime requests per worker per block at the tip, counted by the simulator.

Computing workers on the devnet (registered, benchmarked, added and started through
the reconcile loop); then, with no observe pass running, the simulator counts what each
pRuntime receives over at least 20 blocks: SyncHeader and DispatchBlocks per block,
no GetInfo, GetEgressMessages about once per ``EGRESS_CHECK_BLOCKS``. The heartbeats
those checks carry keep every worker WorkerIdle on chain.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from poolkeeper.app import build_reconciler
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.loop import PassResult
from poolkeeper.model.observed import SessionState
from poolkeeper.plan import PlanPolicy
from poolkeeper.relay.worker import EGRESS_CHECK_BLOCKS
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.command import genesis_for
from poolkeeper_devnet.pruntime import SimulatorThread
from tests.functional.relay.test_relays_on_devnet import (
    DEV_PHRASE,
    placeholder_inventory,
    worker_states,
    write_inventory,
)

WORKERS = 6
BLOCK_TIME = 0.5
HEARTBEAT_INTERVAL = 5
UNRESPONSIVE_AFTER = 40  # the devnet's default bound
MEASURED_BLOCKS = 30
SYNC_METHODS = ("SyncHeader", "DispatchBlocks")


def start_world(base: Path) -> tuple[Path, DevnetChain, SimulatorThread]:
    mnemonic = Mnemonic(DEV_PHRASE)
    draft = placeholder_inventory(base / "draft")
    ring = KeyRing(draft, mnemonic)
    addresses = {a.name: ring.address(a.name) for a in draft.accounts}
    genesis: dict[str, Any] = genesis_for(draft, addresses, cool_down=60)
    genesis["phala"]["pools"][0]["free_stake"] = "1000000 PHA"
    genesis["phala"].update(
        benchmark_duration=3,
        heartbeat_interval=HEARTBEAT_INTERVAL,
        unresponsive_after=UNRESPONSIVE_AFTER,
    )
    chain = DevnetChain.start(genesis, block_time=BLOCK_TIME, finality_lag=0)
    sim = SimulatorThread(WORKERS, prefix_port=0, seed=b"requests", score=1000).start()
    inventory = write_inventory(
        base / "live", chain.url, [sim.prefix_url(i) for i in range(WORKERS)]
    )
    return inventory, chain, sim


async def finalized(rpc: AsyncRpc) -> int:
    head = await rpc.call("chain_getFinalizedHead", [])
    return int((await rpc.call("chain_getHeader", [head]))["number"], 16)


async def test_at_most_two_requests_per_block_besides_egress_checks(tmp_path: Path) -> None:
    inventory, chain, sim = start_world(tmp_path)
    rpc = AsyncRpc(chain.url)
    rec = build_reconciler(
        load_inventory(inventory),
        mnemonic=Mnemonic(DEV_PHRASE),
        state_dir=tmp_path / "state",
        relay_idle_seconds=1.0,
    )
    try:

        def all_computing(result: PassResult) -> bool:
            states = worker_states(rec.desired, result.observed)
            return all(s is SessionState.WORKER_IDLE for s in states.values())

        last = await rec.converge(PlanPolicy(), timeout=180, interval=1.0, until=all_computing)
        assert all_computing(last), worker_states(rec.desired, last.observed)
        await asyncio.sleep(2 * BLOCK_TIME)  # the last pass's requests are answered

        first = await finalized(rpc)
        before = sim.requests()
        dispatched = [sim.worker(i).blocknum for i in range(WORKERS)]
        sequences = [sim.worker(i).next_sequence for i in range(WORKERS)]
        deadline = time.monotonic() + MEASURED_BLOCKS * BLOCK_TIME * 6
        while await finalized(rpc) < first + MEASURED_BLOCKS:
            assert time.monotonic() < deadline, "the devnet stopped producing blocks"
            await asyncio.sleep(0.1)
        await asyncio.sleep(BLOCK_TIME / 2)  # the last block reaches every pRuntime
        after = sim.requests()
        # Blocks each pRuntime dispatched between the two counts (no edge effects).
        blocks_of = [sim.worker(i).blocknum - dispatched[i] for i in range(WORKERS)]
        blocks = min(blocks_of)

        def count(i: int, methods: tuple[str, ...] | None = None) -> int:
            names = set(after[i]) if methods is None else set(methods)
            return sum(after[i].get(m, 0) - before[i].get(m, 0) for m in names)

        per_block = [count(i) / blocks_of[i] for i in range(WORKERS)]
        sync = [count(i, SYNC_METHODS) / blocks_of[i] for i in range(WORKERS)]
        egress = [count(i, ("GetEgressMessages",)) / blocks_of[i] for i in range(WORKERS)]
        info = [count(i, ("GetInfo",)) for i in range(WORKERS)]
        detail = f"blocks {blocks}, per worker: all {per_block}, sync {sync}, egress {egress}"
        print(detail)
        assert blocks >= 20, detail
        assert max(sync) <= 2.0, detail
        assert info == [0] * WORKERS, detail
        assert all(e > 0 for e in egress), detail  # egress is checked ...
        allowance = 1 / EGRESS_CHECK_BLOCKS + 1 / blocks  # ... and no more than promised
        assert sum(per_block) / WORKERS <= 2.0 + allowance, detail
        assert max(per_block) <= 2.0 + allowance + 1 / blocks, detail

        # Heartbeats were produced and carried: every worker still WorkerIdle.
        assert all(sim.worker(i).next_sequence > sequences[i] for i in range(WORKERS))
        observed = await rec.observe()
        states = worker_states(rec.desired, observed)
        assert all(s is SessionState.WORKER_IDLE for s in states.values()), states
        assert all(len(sim.worker(i).egress) <= 2 for i in range(WORKERS))
    finally:
        await rec.close()
        await rpc.close()
        sim.stop()
        chain.stop()
