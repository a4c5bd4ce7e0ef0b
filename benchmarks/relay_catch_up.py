"""Catch-up: how fast one relay feeds a chain's history into a simulated pRuntime.

Target (issue 7): >= 500 blocks/s (pherry is reported at about 10 blocks/s). The devnet
chain runs as its own process in manual block mode and first produces ``--blocks`` empty
blocks (``dev_newBlock``); the pRuntime simulator runs as another process. Each round a
fresh ``RelaySource`` (cold cache: every header, justification and storage change is
fetched from the node) and a ``WorkerRelay`` take a fresh pRuntime from InitRuntime to
the finalized tip; the rate is blocks dispatched / wall time. CPU seconds of the three
processes (relay = this one, chain simulator, pRuntime simulator) show where time goes.

    .venv/bin/python benchmarks/relay_catch_up.py [--blocks 3000] [--sync-blocks 1000] [--rounds 3]
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
from pathlib import Path

from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain.relay_source import RelaySource
from poolkeeper.pruntime import PRuntimeTransport
from poolkeeper.relay.worker import RelayOptions, StepKind, WorkerRelay

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests._ports import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(check: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def produce(url: str, blocks: int) -> int:
    rpc = AsyncRpc(url)
    try:
        done = 0
        while done < blocks:
            step = min(500, blocks - done)
            await rpc.call("dev_newBlock", [{"count": step}])
            done += step
        header = await rpc.call("chain_getHeader", [])
        return int(header["number"], 16)
    finally:
        await rpc.close()


async def catch_up(url: str, endpoint: str, sync_blocks: int, tip: int) -> tuple[float, int]:
    rpc = AsyncRpc(url)
    source = RelaySource(rpc)
    try:
        async with PRuntimeTransport(max_in_flight=16, timeout=60) as transport:
            relay = WorkerRelay(
                "bench", transport.client(endpoint), source, RelayOptions(sync_blocks=sync_blocks)
            )
            started = time.perf_counter()
            while await relay.step() is not StepKind.TIP:
                pass
            elapsed = time.perf_counter() - started
            assert relay.status.blocknum > tip, (relay.status.blocknum, tip)
            return elapsed, source.fetches
    finally:
        await rpc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=3000)
    parser.add_argument("--sync-blocks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ready = Path(tmp) / "ready.json"
        chain_cmd = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
        chain_cmd += ["--genesis", "dev", "--block-time", "manual", "--finality-lag", "0"]
        sim_cmd = [sys.executable, "-m", "poolkeeper_devnet.pruntime"]
        sim_cmd += ["--workers", str(args.rounds), "--port", "0", "--ready-file", str(ready)]
        chain = subprocess.Popen(chain_cmd, env=env, stdout=subprocess.DEVNULL)
        sim = subprocess.Popen(sim_cmd, env=env, stdout=subprocess.DEVNULL)
        try:
            url = f"ws://127.0.0.1:{port}"
            wait_for(lambda: ready.exists() and ready.read_text(), "the pRuntime simulator")
            endpoints = json.loads(ready.read_text())["workers"]
            wait_for(lambda: listening(port), "the devnet chain")
            started = time.perf_counter()
            tip = asyncio.run(produce(url, args.blocks))
            print(
                f"chain: {tip} blocks produced in {time.perf_counter() - started:.1f} s; "
                f"one relay, DispatchBlocks of {args.sync_blocks} blocks"
            )
            rates = []
            for round_, endpoint in enumerate(endpoints, 1):
                cpu = (time.process_time(), cpu_seconds(chain.pid), cpu_seconds(sim.pid))
                elapsed, fetches = asyncio.run(catch_up(url, endpoint, args.sync_blocks, tip))
                relay_cpu = time.process_time() - cpu[0]
                chain_cpu = cpu_seconds(chain.pid) - cpu[1]
                sim_cpu = cpu_seconds(sim.pid) - cpu[2]
                rates.append(tip / elapsed)
                print(
                    f"round {round_}: {tip} blocks in {elapsed:.2f} s = {tip / elapsed:.0f} "
                    f"blocks/s ({fetches} node requests; CPU: relay {relay_cpu:.1f} s, "
                    f"chain simulator {chain_cpu:.1f} s, pRuntime simulator {sim_cpu:.1f} s)"
                )
            print(
                f"blocks/s: min {min(rates):.0f}, median {statistics.median(rates):.0f}, "
                f"max {max(rates):.0f} (target >= 500)"
            )
        finally:
            for process in (chain, sim):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
