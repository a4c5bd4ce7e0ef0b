"""GetInfo on many simulated pRuntimes with a bounded number of requests in flight.

Target (issue 4): 10,000 workers, 500 in flight, <= 3 s. The simulator runs in a separate
process (as in real use), so the figures split the time between the client (this process)
and the simulator, by CPU time read from /proc.

    .venv/bin/python benchmarks/pruntime_getinfo.py [--workers 10000] [--in-flight 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from poolkeeper.pruntime import PRuntimeTransport

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(urls: list[str], in_flight: int) -> tuple[float, int]:
    async with PRuntimeTransport(max_in_flight=in_flight, timeout=30) as transport:
        clients = [transport.client(url) for url in urls]
        started = time.perf_counter()
        infos = await asyncio.gather(*(c.get_info() for c in clients))
        elapsed = time.perf_counter() - started
    return elapsed, sum(1 for info in infos if info.score > 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        command = [sys.executable, "-m", "poolkeeper_devnet.pruntime"]
        command += ["--workers", str(args.workers), "--port", "0", "--ready-file", str(ready)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not ready.exists() or not ready.read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("simulator did not start")
                time.sleep(0.05)
            urls = json.loads(ready.read_text())["workers"]
            print(f"GetInfo x {len(urls)} workers, {args.in_flight} in flight, one shared port")
            for round_ in range(1, args.rounds + 1):
                sim_before, cli_before = cpu_seconds(server.pid), time.process_time()
                elapsed, answered = asyncio.run(run(urls, args.in_flight))
                sim_cpu = cpu_seconds(server.pid) - sim_before
                cli_cpu = time.process_time() - cli_before
                print(
                    f"round {round_}: wall {elapsed:.2f} s, answered {answered}, "
                    f"{len(urls) / elapsed:,.0f} req/s; CPU client {cli_cpu:.2f} s, "
                    f"simulator {sim_cpu:.2f} s"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
