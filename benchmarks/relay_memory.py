"""Memory of N in-process relays parked at the tip: traced Python memory per relay and the
largest sites (tracemalloc), and this process's RSS before and after.

The devnet chain (``--block-time``, finality lag 0) and N simulated pRuntimes (one
process, one port) run beside this process, which runs a ``RelaySupervisor`` with a
no-op signer as ``run`` does; once every relay is at the tip and ``--settle`` seconds
have passed, the traced memory since before the relays started is compared.

    .venv/bin/python benchmarks/relay_memory.py [--workers 4000] [--top 14]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests._ports import free_port  # noqa: E402

from poolkeeper.chain._rpc import AsyncRpc  # noqa: E402
from poolkeeper.chain.ports import CallSpec  # noqa: E402
from poolkeeper.chain.relay_source import RelaySource  # noqa: E402
from poolkeeper.pruntime import PRuntimeTransport  # noqa: E402
from poolkeeper.relay.supervisor import RelaySupervisor  # noqa: E402
from poolkeeper.relay.worker import RelayCondition, RelayOptions  # noqa: E402


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024


async def _submit(job_id: str, call: CallSpec) -> bool:
    return True


async def measure(url: str, endpoints: list[str], args: argparse.Namespace) -> None:
    rpc = AsyncRpc(url)
    source = RelaySource(rpc)
    async with PRuntimeTransport(max_in_flight=500, timeout=60) as transport:
        supervisor = RelaySupervisor(source, transport, lambda _n: _submit, idle_seconds=30)
        options = RelayOptions(sync_blocks=4)
        print(f"RSS before the relays: {rss_mb():.0f} MB")
        tracemalloc.start(3)
        before = tracemalloc.take_snapshot()
        names = [f"w{i}" for i in range(len(endpoints))]
        supervisor.reconcile({n: (e, options) for n, e in zip(names, endpoints, strict=True)})

        def at_tip() -> int:
            return sum(
                1
                for n in names
                if (r := supervisor.relay(n)) and r.status.condition is RelayCondition.AT_TIP
            )

        while at_tip() < len(names):
            await asyncio.sleep(0.5)
        await asyncio.sleep(args.settle)
        after = tracemalloc.take_snapshot()
        traced = tracemalloc.get_traced_memory()[0]
        count = len(names)
        print(
            f"{count} relays at the tip: RSS {rss_mb():.0f} MB (tracemalloc's own included); "
            f"traced {traced / 2**20:.1f} MB, {traced / count:.0f} bytes a relay"
        )
        for stat in after.compare_to(before, "traceback")[: args.top]:
            where = " | ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback)
            print(f"  {stat.size_diff / count:7.0f} B a relay  {where}")
        await supervisor.stop_all()
    await rpc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4000)
    parser.add_argument("--block-time", default="6s")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ready = Path(tmp) / "ready.json"
        chain_cmd = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
        chain_cmd += ["--genesis", "dev", "--block-time", args.block_time, "--finality-lag", "0"]
        sim_cmd = [sys.executable, "-m", "poolkeeper_devnet.pruntime", "--workers"]
        sim_cmd += [str(args.workers), "--port", "0", "--ready-file", str(ready)]
        chain = subprocess.Popen(chain_cmd, env=env, **quiet)  # type: ignore[call-overload]
        sim = subprocess.Popen(sim_cmd, env=env, **quiet)  # type: ignore[call-overload]
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    up = sock.connect_ex(("127.0.0.1", port)) == 0
                if up and ready.exists() and ready.read_text():
                    break
                time.sleep(0.2)
            else:
                raise SystemExit("the devnet did not start within 300 s")
            endpoints = json.loads(ready.read_text())["workers"]
            import uvloop

            uvloop.run(measure(f"ws://127.0.0.1:{port}", endpoints, args))
        finally:
            for process in (chain, sim):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
