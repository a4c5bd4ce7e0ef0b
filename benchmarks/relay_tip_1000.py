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
        [--compare --rounds 2] [--loop asyncio|uvloop]

``--compare`` alternates, in one run against the same devnet, relays that step by
themselves at the tip (each waits for the block and sends its own requests: the relay
before the tip feeder) and relays fed by the supervisor's ``TipFeeder``, so the
ratios are side by side on a noisy machine. Requests per worker per block come from the
simulator's counters (``GET /devnet/requests``).
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
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import xxhash

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.ports import CallSpec
from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.supervisor import RelaySupervisor
from poolkeeper.relay.worker import RelayCondition, RelayOptions, WorkerRelay

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
_original_advance = WorkerRelay._advance


def _timed_advance(self: WorkerRelay, index: int, synced_to: int, *, expected: int) -> None:
    """Every ``DispatchBlocks`` answer goes through here, whether the relay sent it itself
    or the tip feeder did."""
    _original_advance(self, index, synced_to, expected=expected)
    if index != 2:
        return
    now = time.time()
    for number in range(_last.get(self.name, synced_to) + 1, synced_to + 1):
        reached[number].append(now)
    _last[self.name] = synced_to


WorkerRelay._advance = _timed_advance  # type: ignore[method-assign]


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


def sim_requests(base: str) -> dict[str, dict[str, int]]:
    """The simulator's pRPC request counts per worker and method."""
    with urllib.request.urlopen(f"{base}/devnet/requests", timeout=30) as answer:
        counts: dict[str, dict[str, int]] = json.loads(answer.read())
    return counts


async def measure(
    rpc: AsyncRpc, names: list[str], blocks: int, pids: list[int], sim_base: str
) -> dict[str, float]:
    """Time the next ``blocks`` blocks to every pRuntime; CPU and requests meanwhile."""
    first = await finalized(rpc) + 2  # blocks that appear from now on
    last = first + blocks - 1
    while await finalized(rpc) < first - 1:
        await asyncio.sleep(0.05)
    requests_before = await asyncio.to_thread(sim_requests, sim_base)
    while await finalized(rpc) < first:
        await asyncio.sleep(0.05)
    cpu = (time.process_time(), *(cpu_seconds(p) for p in pids))
    wall = time.monotonic()
    while len(reached.get(last, ())) < len(names):
        if time.monotonic() - wall > blocks * 30:
            break
        await asyncio.sleep(0.1)
    wall = time.monotonic() - wall
    product = time.process_time() - cpu[0]
    chain_cpu, sim_cpu = (cpu_seconds(p) - c for p, c in zip(pids, cpu[1:], strict=True))
    requests_after = await asyncio.to_thread(sim_requests, sim_base)
    by_method: dict[str, int] = defaultdict(int)
    for worker, counts in requests_after.items():
        for method, n in counts.items():
            by_method[method] += n - requests_before.get(worker, {}).get(method, 0)
    latencies = []
    for number in range(first, last + 1):
        times = reached.get(number, [])
        if len(times) < len(names):
            print(f"block {number}: reached only {len(times)} of {len(names)} pRuntimes")
            continue
        appeared = await block_time_of(rpc, number)
        latencies.append(max(times) - appeared)
    # Requests from the block before ``first`` to the last: one block more than measured.
    per_worker_block = sum(by_method.values()) / len(names) / (blocks + 1)
    methods = ", ".join(
        f"{m} {n / len(names) / (blocks + 1):.2f}" for m, n in by_method.items() if n
    )
    status = Path("/proc/self/status").read_text().splitlines()
    rss = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    print(
        f"  RSS of this process (the product's relays, source and transport): {rss / 1024:.0f} MB"
    )
    print(
        f"  {len(latencies)} blocks: last pRuntime median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s; CPU over {wall:.0f} s: product {product:.1f} s "
        f"({product / blocks:.3f} s/block), pRuntime simulator {sim_cpu:.1f} s, chain "
        f"{chain_cpu:.1f} s; requests per worker per block {per_worker_block:.2f} ({methods})"
    )
    return {
        "median": statistics.median(latencies) if latencies else float("nan"),
        "max": max(latencies) if latencies else float("nan"),
        "product_cpu_per_block": product / blocks,
        "sim_cpu_per_block": sim_cpu / blocks,
        "requests_per_worker_block": per_worker_block,
    }


async def _no_submit(job_id: str, call: CallSpec) -> bool:
    """``--egress``: relays check egress as with a signer (the simulated workers are not
    computing, so there is nothing to submit)."""
    return True


async def run(url: str, endpoints: list[str], args: argparse.Namespace, pids: list[int]) -> None:
    rpc = AsyncRpc(url)
    source = RelaySource(rpc)
    sim_base = endpoints[0].rsplit("/w/", 1)[0]
    async with PRuntimeTransport(max_in_flight=500, timeout=60) as transport:
        submit = _no_submit if args.egress else None
        supervisor = RelaySupervisor(source, transport, lambda _n: submit, idle_seconds=args.idle)
        names = [f"w{i}" for i in range(len(endpoints))]
        options = RelayOptions(sync_blocks=args.sync_blocks)
        # "own": each relay waits for the next block and sends its requests itself, as
        # before the tip feeder; "feeder": relays at the tip are fed by the supervisor's
        # ``TipFeeder`` (what ``run`` does).
        order = ["own", "feeder"] * args.rounds if args.compare else ["feeder"] * args.rounds
        started = time.monotonic()
        # Caught up as now (the old relay may not catch up on a loaded machine), then
        # the modes alternate at the tip.
        supervisor.reconcile({n: (e, options) for n, e in zip(names, endpoints, strict=True)})

        def at_tip() -> int:
            return sum(
                1
                for n in names
                if (r := supervisor.relay(n)) and r.status.condition is RelayCondition.AT_TIP
            )

        results: dict[str, list[dict[str, float]]] = defaultdict(list)
        try:
            while at_tip() < len(names):
                if time.monotonic() - started > args.tip_timeout:
                    relays = [r for n in names if (r := supervisor.relay(n)) is not None]
                    conditions = Counter(r.status.condition.value for r in relays)
                    errors = Counter(r.status.last_error for r in relays if r.status.last_error)
                    numbers = sorted(r.status.blocknum for r in relays)
                    raise SystemExit(
                        f"only {at_tip()} of {len(names)} relays reached the tip: "
                        f"{dict(conditions)}; errors {errors.most_common(3)}; pRuntimes at "
                        f"#{numbers[0]}..#{numbers[-1]}, finalized #{await finalized(rpc)}"
                    )
                await asyncio.sleep(0.5)
            print(
                f"{len(names)} pRuntimes initialised and at the tip in "
                f"{time.monotonic() - started:.0f} s"
            )
            for mode in order:
                feeder = supervisor.feeder if mode == "feeder" else None
                for name in names:
                    relay = supervisor.relay(name)
                    assert relay is not None
                    relay.feeder = feeder
                if supervisor.feeder is not None and feeder is None:
                    supervisor.feeder.release_all()
                print(f"{mode}:")
                results[mode].append(await measure(rpc, names, args.blocks, pids, sim_base))
        finally:
            await supervisor.stop_all()
        await rpc.close()
    print(f"summary over {args.rounds} round(s) of {args.blocks} blocks per mode (median):")
    keys = ["median", "max", "product_cpu_per_block", "sim_cpu_per_block"]
    keys.append("requests_per_worker_block")
    for key in keys:
        row = {m: statistics.median(r[key] for r in results[m]) for m in results}
        text = ", ".join(f"{m} {v:.3f}" for m, v in row.items())
        if "own" in row and "feeder" in row and row["feeder"]:
            text += f"; own/feeder {row['own'] / row['feeder']:.2f}x"
        print(f"  {key}: {text}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-time", default="3s")
    parser.add_argument("--idle", type=float, default=1.0, help="relay idle seconds at the tip")
    parser.add_argument("--sync-blocks", type=int, default=4)
    parser.add_argument(
        "--egress", action="store_true", help="relays check egress as with a relay signer"
    )
    parser.add_argument("--tip-timeout", type=float, default=600.0)
    parser.add_argument("--rounds", type=int, default=1, help="measurements per mode")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of this process (the product's relays); simulators unchanged",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="alternate relays stepping by themselves at the tip and the tip feeder, same run",
    )
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ready = Path(tmp) / "ready.json"
        chain_cmd = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
        chain_cmd += ["--genesis", "dev", "--block-time", args.block_time, "--finality-lag", "0"]
        sim_cmd = [sys.executable, "-m", "poolkeeper_devnet.pruntime"]
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
            main_coro = run(f"ws://127.0.0.1:{port}", endpoints, args, [chain.pid, sim.pid])
            if args.loop == "uvloop":
                import uvloop

                uvloop.run(main_coro)
            else:
                asyncio.run(main_coro)
        finally:
            for process in (chain, sim):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
