"""Relays in parachain mode: catch-up speed of one relay, node requests for many.

A devnet relay chain + parachain (in this process's background thread) with N parachain
blocks, simulated pRuntimes in a thread too; one relay feeds one pRuntime from genesis
to the tip (InitRuntime, SyncCombinedHeaders, SyncParaHeader, DispatchBlocks), then W
relays do the same from one shared source. Issue 7's catch-up target is >= 500 blocks/s
for one relay (solo mode; here parachain mode), and node requests that do not grow
with the number of workers.

    .venv/bin/python benchmarks/relay_parachain.py [--blocks 2000] [--workers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import ParachainSource
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import RelayCondition, RelayOptions
from poolkeeper_devnet.chain.parachain import DevnetParachain
from poolkeeper_devnet.pruntime import SimulatorThread


async def sync(network: DevnetParachain, sim: SimulatorThread, workers: int) -> tuple[float, int]:
    para, relay = AsyncRpc(network.url), AsyncRpc(network.relay_url)
    source = ParachainSource(para, relay)
    async with PRuntimeTransport(max_in_flight=200, timeout=30) as transport:
        supervisor = RelaySupervisor(source, transport, lambda _name: None, idle_seconds=0.01)
        for i in range(workers):
            sim.set_fault(i, "restart")
        started = time.perf_counter()
        supervisor.reconcile(
            {f"b{i}": (sim.prefix_url(i), RelayOptions(sync_blocks=256)) for i in range(workers)}
        )
        while not all(
            (r := supervisor.relay(f"b{i}")) is not None
            and r.status.condition is RelayCondition.AT_TIP
            for i in range(workers)
        ):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await supervisor.stop_all()
    await para.close()
    await relay.close()
    return elapsed, source.node_requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    network = DevnetParachain.start("dev", block_time="manual", finality_lag=0)
    try:
        started = time.perf_counter()
        for _ in range(args.blocks):
            network.new_block()
        print(f"chain: {args.blocks} parachain blocks in {time.perf_counter() - started:.1f} s")
        with SimulatorThread(args.workers, prefix_port=0, seed=b"bench-para") as sim:
            one_time, one_requests = asyncio.run(sync(network, sim, 1))
            many_time, many_requests = asyncio.run(sync(network, sim, args.workers))
            blocks = sim.worker(0).blocknum - 1
    finally:
        network.stop()
    print(
        f"1 relay: {blocks} blocks in {one_time:.2f} s = {blocks / one_time:.0f} blocks/s, "
        f"{one_requests} node requests"
    )
    print(
        f"{args.workers} relays: {many_time:.2f} s, {many_requests} node requests "
        f"({(many_requests - one_requests) / one_requests:+.1%} vs 1)"
    )


if __name__ == "__main__":
    main()
