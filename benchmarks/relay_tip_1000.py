"""1,000 workers at the tip: how long until a new block has reached every pRuntime.

Target (issue 7): each new block reaches all 1,000 within 2 s. The devnet chain (its own
process, ``--block-time``, finality lag 0) and 1,000 simulated pRuntimes (another
process, one shared port) run beside this process, which runs the product's relays as
``poolkeeper run`` does: one ``RelaySupervisor``, one shared ``RelaySource``, one
pRuntime transport (500 in flight), relays idle ``--idle`` s between rounds at the tip.
After every relay has caught up, each following block is timed from its appearance on
the chain (its ``Timestamp.Now``, set when the devnet starts producing it) to the last
``DispatchBlocks`` answer of the 1,000 pRuntimes that covers it. CPU seconds of the
three processes over the measured blocks show the split between product and simulators.

    .venv/bin/python benchmarks/relay_tip_1000.py [--workers 1000] [--blocks 20] [--block-time 3s]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import xxhash

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.pruntime.client import HttpPRuntimeClient
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import RelayCondition, RelayOptions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests._ports import free_port  # noqa: E402

TIMESTAMP_NOW = (
    "0x"
    + b"".join(
        xxhash.xxh64(name, seed=seed).digest()[::-1]
        for name in (b"Timestamp", b"Now")
        for seed in (0, 1)
    ).hex()
)

reached: dict[int, list[float]] = defaultdict(list)
"""Block number → wall-clock times at which a pRuntime reported it dispatched."""
_last: dict[str, int] = {}
_original_dispatch = HttpPRuntimeClient.dispatch_blocks


async def _timed_dispatch(self: HttpPRuntimeClient, encoded_blocks: bytes) -> int:
    synced = await _original_dispatch(self, encoded_blocks)
    now = time.time()
    for number in range(_last.get(self.url, synced) + 1, synced + 1):
        reached[number].append(now)
    _last[self.url] = synced
    return synced


HttpPRuntimeClient.dispatch_blocks = _timed_dispatch  # type: ignore[method-assign]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: object, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not happen within {seconds} s")


async def finalized(rpc: AsyncRpc) -> int:
    head = await rpc.call("chain_getFinalizedHead", [])
    return int((await rpc.call("chain_getHeader", [head]))["number"], 16)


async def block_time_of(rpc: AsyncRpc, number: int) -> float:
    block_hash = await rpc.call("chain_getBlockHash", [number])
    raw = await rpc.call("state_getStorage", [TIMESTAMP_NOW, block_hash])
    return int.from_bytes(bytes.fromhex(raw[2:]), "little") / 1000


async def run(url: str, endpoints: list[str], args: argparse.Namespace, pids: list[int]) -> None:
    rpc = AsyncRpc(url)
    source = RelaySource(rpc)
    async with PRuntimeTransport(max_in_flight=500, timeout=60) as transport:
        supervisor = RelaySupervisor(source, transport, lambda _n: None, idle_seconds=args.idle)
        names = [f"w{i}" for i in range(len(endpoints))]
        options = RelayOptions(sync_blocks=args.sync_blocks)
        started = time.monotonic()
        supervisor.reconcile({n: (e, options) for n, e in zip(names, endpoints, strict=True)})

        def at_tip() -> int:
            return sum(
                1
                for n in names
                if (r := supervisor.relay(n)) and r.status.condition is RelayCondition.AT_TIP
            )

        try:
            while at_tip() < len(names):
                if time.monotonic() - started > 600:
                    raise SystemExit(f"only {at_tip()} of {len(names)} relays reached the tip")
                await asyncio.sleep(0.5)
            print(
                f"{len(names)} pRuntimes initialised and at the tip in "
                f"{time.monotonic() - started:.0f} s"
            )
            first = await finalized(rpc) + 2  # blocks that appear from now on
            last = first + args.blocks - 1
            while await finalized(rpc) < first:
                await asyncio.sleep(0.05)
            cpu = (time.process_time(), *(cpu_seconds(p) for p in pids))
            wall = time.monotonic()
            while len(reached.get(last, ())) < len(names):
                if time.monotonic() - wall > args.blocks * 30:
                    break
                await asyncio.sleep(0.1)
            wall = time.monotonic() - wall
            product = time.process_time() - cpu[0]
            chain_cpu, sim_cpu = (cpu_seconds(p) - c for p, c in zip(pids, cpu[1:], strict=True))
        finally:
            await supervisor.stop_all()
        latencies = []
        for number in range(first, last + 1):
            times = reached.get(number, [])
            if len(times) < len(names):
                print(f"block {number}: reached only {len(times)} of {len(names)} pRuntimes")
                continue
            appeared = await block_time_of(rpc, number)
            latencies.append(max(times) - appeared)
            print(
                f"block {number}: first pRuntime {min(times) - appeared:.2f} s, "
                f"last {max(times) - appeared:.2f} s after it appeared"
            )
        await rpc.close()
        print(
            f"CPU over {wall:.0f} s of measured blocks: product (relays) {product:.1f} s, "
            f"chain simulator {chain_cpu:.1f} s, pRuntime simulator {sim_cpu:.1f} s"
        )
        if latencies:
            print(
                f"last of {len(names)} pRuntimes after a block appeared: min "
                f"{min(latencies):.2f} s, median {statistics.median(latencies):.2f} s, max "
                f"{max(latencies):.2f} s over {len(latencies)} blocks (target <= 2 s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-time", default="3s")
    parser.add_argument("--idle", type=float, default=1.0, help="relay idle seconds at the tip")
    parser.add_argument("--sync-blocks", type=int, default=4)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ready = Path(tmp) / "ready.json"
        chain_cmd = [sys.executable, "-m", "poolkeeper.devnet.chain", "--port", str(port)]
        chain_cmd += ["--genesis", "dev", "--block-time", args.block_time, "--finality-lag", "0"]
        sim_cmd = [sys.executable, "-m", "poolkeeper.devnet.pruntime"]
        sim_cmd += ["--workers", str(args.workers), "--port", "0", "--ready-file", str(ready)]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        chain = subprocess.Popen(chain_cmd, env=env, **quiet)  # type: ignore[call-overload]
        sim = subprocess.Popen(sim_cmd, env=env, **quiet)  # type: ignore[call-overload]
        try:
            wait_for(lambda: listening(port), "the devnet chain start")
            wait_for(lambda: ready.exists() and ready.read_text(), "the pRuntime simulator start")
            endpoints = json.loads(ready.read_text())["workers"]
            print(
                f"{args.workers} pRuntimes, blocks every {args.block_time}, relays idle "
                f"{args.idle} s at the tip"
            )
            asyncio.run(run(f"ws://127.0.0.1:{port}", endpoints, args, [chain.pid, sim.pid]))
        finally:
            for process in (chain, sim):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
