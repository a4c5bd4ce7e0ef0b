"""Observe 10,000 workers in 50 pools: the chain part, the pRuntime part, and both together.

Targets (issue 5): <= 5 s and <= 100 chain round trips. The devnet chain runs as its own
process with a genesis of 50 pools x 200 registered workers (in pools, Ready); 10,000
simulated pRuntimes run in another process behind one shared port. The chain part is
``SubstrateChain.read_state`` of the 50 pools (pools, their workers, sessions, stakes);
the pRuntime part is ``GetInfo`` of every pRuntime, 500 in flight, as the observer polls
them. The observer runs both concurrently; "together" does the same here. (The simulated
pRuntimes' keys are not the genesis workers' keys, so the observer's extra read of
unknown pubkeys is left out: in a real deployment every pRuntime's key is on chain.)

    .venv/bin/python benchmarks/observe_10k.py [--pools 50] [--per-pool 200] [--rounds 3]
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from poolkeeper.chain import SubstrateChain  # noqa: E402
from poolkeeper.observe.observer import poll_pruntimes  # noqa: E402
from poolkeeper.observe.pruntime_info import PRuntimeInfoReader  # noqa: E402
from poolkeeper.pruntime import PRuntimeTransport  # noqa: E402

ALICE = "45R2pfjQUW2s9PQRHU48HQKLKHVMaDja7N3wpBtmF28UYDs2"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Timed:
    """Wall seconds of one timed section and the CPU seconds each process spent in it."""

    wall: float = 0.0
    client_cpu: float = 0.0
    sim_cpu: dict[str, float] = field(default_factory=dict)


class Clock:
    """Times a section: wall clock, this process's CPU and each simulator's CPU."""

    def __init__(self, sims: dict[str, int]) -> None:
        self._sims = sims

    def __enter__(self) -> Timed:
        self._timed = Timed()
        self._start = (time.perf_counter(), time.process_time())
        self._sim_start = {name: cpu_seconds(pid) for name, pid in self._sims.items()}
        return self._timed

    def __exit__(self, *exc: object) -> None:
        self._timed.wall = time.perf_counter() - self._start[0]
        self._timed.client_cpu = time.process_time() - self._start[1]
        self._timed.sim_cpu = {
            name: cpu_seconds(pid) - self._sim_start[name] for name, pid in self._sims.items()
        }


async def chain_part(url: str, pids: list[int], clock: Clock) -> tuple[Timed, int, int]:
    chain = SubstrateChain(url)
    try:
        await chain.read_state([0], ())  # connect and load metadata outside the timing
        before = chain.round_trips
        with clock as timed:
            state = await chain.read_state(pids, ())
        return timed, chain.round_trips - before, len(state.workers)
    finally:
        await chain.close()


async def pruntime_part(urls: list[str], in_flight: int, clock: Clock) -> tuple[Timed, int]:
    async with PRuntimeTransport(max_in_flight=in_flight, timeout=30) as transport:
        with clock as timed:
            polled = await poll_pruntimes(PRuntimeInfoReader(transport), urls, in_flight)
    return timed, sum(1 for p in polled.values() if p.info is not None)


async def together(
    url: str, pids: list[int], urls: list[str], in_flight: int, clock: Clock
) -> Timed:
    chain = SubstrateChain(url)
    try:
        await chain.read_state([0], ())
        async with PRuntimeTransport(max_in_flight=in_flight, timeout=30) as transport:
            with clock as timed:
                await asyncio.gather(
                    chain.read_state(pids, ()),
                    poll_pruntimes(PRuntimeInfoReader(transport), urls, in_flight),
                )
            return timed
    finally:
        await chain.close()


def busy_wall(cpu: float = 0.5) -> float:
    """Wall seconds a busy loop takes to use ``cpu`` seconds of CPU: how much of a core
    this machine gives a process right now (``cpu`` on a quiet machine)."""
    started, cpu_start = time.perf_counter(), time.process_time()
    while time.process_time() - cpu_start < cpu:
        pass
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    """min / median / max."""
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--per-pool", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workers = args.pools * args.per_pool
    pids = list(range(args.pools))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        genesis = Path(tmp) / "genesis.json"
        genesis.write_text(
            json.dumps(
                {
                    "block_time": "6s",
                    "phala": {
                        "pools": [
                            {"owner": "//Alice", "free_stake": "1000 PHA", "worker_count": n}
                            for n in [args.per_pool] * args.pools
                        ]
                    },
                }
            )
        )
        port = free_port()
        ready = Path(tmp) / "ready.json"
        chain_cmd = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
        sim_cmd = [sys.executable, "-m", "poolkeeper_devnet.pruntime", "--workers", str(workers)]
        sim_cmd += ["--port", "0", "--ready-file", str(ready)]
        processes = [
            subprocess.Popen([*chain_cmd, "--genesis", str(genesis)], env=env),
            subprocess.Popen(sim_cmd, env=env, stdout=subprocess.DEVNULL),
        ]
        try:
            wait_for(lambda: listening(port), "the devnet chain")
            wait_for(lambda: ready.exists() and ready.read_text(), "the pRuntime simulator")
            urls = json.loads(ready.read_text())["workers"]
            url = f"ws://127.0.0.1:{port}"
            print(f"observe {workers} workers in {args.pools} pools ({args.in_flight} in flight)")
            clock = Clock(
                {"chain simulator": processes[0].pid, "pRuntime simulator": processes[1].pid}
            )
            parts: dict[str, list[Timed]] = {"chain": [], "pRuntimes": [], "both": []}
            print(f"a busy loop needing 0.5 s of CPU took {busy_wall():.2f} s of wall clock")
            for round_ in range(1, args.rounds + 1):
                chain, trips, seen = asyncio.run(chain_part(url, pids, clock))
                pruntimes, answered = asyncio.run(pruntime_part(urls, args.in_flight, clock))
                both = asyncio.run(together(url, pids, urls, args.in_flight, clock))
                for name, timed in (("chain", chain), ("pRuntimes", pruntimes), ("both", both)):
                    parts[name].append(timed)
                    sims = ", ".join(f"{k} {v:.2f} s" for k, v in timed.sim_cpu.items())
                    extra = {
                        "chain": f"; {trips} round trips, {seen} workers",
                        "pRuntimes": f"; {answered} answered",
                        "both": "",
                    }[name]
                    print(
                        f"round {round_}: {name}: {timed.wall:.2f} s (CPU: client "
                        f"{timed.client_cpu:.2f} s, {sims}){extra}"
                    )
            print(f"load average after the runs: {os.getloadavg()}")
            print(f"a busy loop needing 0.5 s of CPU took {busy_wall():.2f} s of wall clock")
            for name, runs in parts.items():
                print(
                    f"{name} (min / median / max of {len(runs)}): wall "
                    f"{spread([t.wall for t in runs])} s; client CPU "
                    f"{spread([t.client_cpu for t in runs])} s"
                )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
