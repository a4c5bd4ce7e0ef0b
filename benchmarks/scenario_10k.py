"""The 10,000-worker scenario (issue 15): ``poolkeeper run`` from nothing to all computing.

A fresh devnet: the chain simulator (own process) whose genesis funds the inventory's
accounts and creates ``--pools`` pools, and ``--pools`` x ``--workers-per-pool``
uninitialised simulated pRuntimes (one process, one shared port). ``poolkeeper run``
(own process, the CLI as an operator runs it) then takes every worker from nothing to
computing: relays initialise and sync the pRuntimes and register them, the chain
benchmarks them, the executor adds them to their pools and starts computing. Once every
worker is WorkerIdle on chain, ``--steady-blocks`` blocks of steady state follow, with
heartbeats (egress) flowing and observe passes every ``--loop-interval`` seconds.

Recorded: time to converge; extrinsics by kind from the product's journal (an extrinsic
carrying several kinds counts for each); during the steady state the node requests per
block (the chain simulator's counters, minus this script's own polls), pRuntime requests
per worker per block (the simulator's counters), CPU per block of each process, and the
RSS of each process (sampled every 5 s: first, last, max). Not in CI.

    .venv/bin/python benchmarks/scenario_10k.py [--pools 50] [--workers-per-pool 200]
        [--block-time 12s] [--steady-blocks 100] [--loop-interval 30]
        [--heartbeat-interval 1] [--expected-heartbeats 20] [--run-log FILE]

Liveness as on Khala: a heartbeat challenge every block sampling about 20 computing workers
(``--expected-heartbeats 0`` asks every computing worker, as ``devnet up`` does every 5
blocks: 2,000 heartbeats a block at 10,000 workers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests._ports import free_port  # noqa: E402

from poolkeeper.chain import SubstrateChain  # noqa: E402
from poolkeeper.chain._rpc import AsyncRpc  # noqa: E402
from poolkeeper.inventory import load_inventory  # noqa: E402
from poolkeeper.keys import KeyRing, Mnemonic  # noqa: E402
from poolkeeper.model.observed import SessionState  # noqa: E402
from poolkeeper_devnet.command import genesis_for  # noqa: E402

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
STAKE_PHA = 3000
SETTLE_SECONDS = 300
"""Issue 12's memory target counts growth after the first 5 minutes of steady state."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Any, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not happen within {seconds} s")


def write_inventory(
    directory: Path, chain_url: str, endpoints: list[str], pools: int, interval: float
) -> Path:
    """One owner per pool, one relay signer; every worker computing in its pool."""
    inventory = directory / "inventory"
    inventory.mkdir(parents=True, exist_ok=True)
    per_pool = max(1, len(endpoints) // pools)
    settings = {
        "network": "devnet",
        "chain": {"endpoints": [chain_url], "wait_for": "inclusion"},
        "secrets": {"env": "POOLKEEPER_MNEMONIC"},
        "relay": {"sync_blocks": 64, "attestation_provider": "none"},
        "state_dir": str(directory / "state"),
        "pruntime_concurrency": 500,
        "pruntime_timeout_seconds": 60,
        "loop": {"interval_seconds": interval},
    }
    accounts: list[dict[str, Any]] = [
        {"name": "relay-signer", "role": "relay_signer", "derivation": "relay"}
    ]
    pool_docs = []
    for pid in range(pools):
        accounts.append({"name": f"owner-{pid}", "role": "owner", "derivation": f"owner//{pid}"})
        pool_docs.append(
            {
                "name": f"pool-{pid}",
                "pid": pid,
                "owner": f"owner-{pid}",
                "cap": "100000000 PHA",
                "commission": "5%",
                "default_stake": f"{STAKE_PHA} PHA",
            }
        )
    workers = [
        {"name": f"w{i:05d}", "endpoint": url, "pool": f"pool-{min(i // per_pool, pools - 1)}"}
        for i, url in enumerate(endpoints)
    ]
    doc = {"settings": settings, "accounts": accounts, "pools": pool_docs, "workers": workers}
    (inventory / "all.yaml").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return inventory


def sim_requests(base: str) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"{base}/devnet/requests", timeout=60) as answer:
        counts: dict[str, dict[str, int]] = json.loads(answer.read())
    return counts


class Poller:
    """This script's chain reads, counted so they can be taken out of the node figures."""

    def __init__(self, url: str) -> None:
        self.rpc = AsyncRpc(url)
        self.calls = 0

    async def call(self, method: str, params: list[Any]) -> Any:
        self.calls += 1
        return await self.rpc.call(method, params)

    async def finalized(self) -> int:
        head = await self.call("chain_getFinalizedHead", [])
        return int((await self.call("chain_getHeader", [head]))["number"], 16)


async def computing(url: str, pools: int) -> int:
    """Workers in the pools with session state WorkerIdle (reads through its own
    connection, before the steady state only)."""
    chain = SubstrateChain(url)
    try:
        state = await chain.read_state(list(range(pools)), ())
    finally:
        await chain.close()
    keys = {k for pool in state.pools.values() for k in pool.workers}
    return sum(
        1
        for k in keys
        if (w := state.workers.get(k)) is not None and w.session_state is SessionState.WORKER_IDLE
    )


def extrinsics_by_kind(journal: Path) -> tuple[Counter[str], Counter[str]]:
    """(extrinsics, calls) per action kind, from the product's journal."""
    extrinsics: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        for (action_ids,) in db.execute("SELECT action_ids FROM extrinsics"):
            ids = json.loads(action_ids) if action_ids.startswith("[") else action_ids.split(",")
            kinds = [str(i).split(":", 1)[0] for i in ids if i]
            calls.update(kinds)
            extrinsics.update(set(kinds))
    return extrinsics, calls


async def scenario(
    args: argparse.Namespace, chain_url: str, inventory: Path, sim_base: str, pids: dict[str, int]
) -> None:
    total = args.pools * args.workers_per_pool
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "POOLKEEPER_MNEMONIC": PHRASE,
    }
    log_path = Path(args.run_log) if args.run_log else inventory.parent / "run.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    run = subprocess.Popen(
        [sys.executable, "-m", "poolkeeper", "run", str(inventory)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    pids["run"] = run.pid
    try:
        done = 0
        while done < total:
            if run.poll() is not None:
                raise SystemExit(f"poolkeeper run exited with {run.returncode}: see {log.name}")
            if time.monotonic() - started > args.converge_timeout:
                raise SystemExit(f"only {done} of {total} workers computing after the timeout")
            await asyncio.sleep(10)
            done = await computing(chain_url, args.pools)
            sizes = ", ".join(f"{name} {rss_mb(pid):.0f} MB" for name, pid in pids.items())
            print(
                f"  +{time.monotonic() - started:.0f} s: {done} of {total} computing (RSS {sizes})"
            )
        converged = time.monotonic() - started
        print(f"converged: {total} workers computing {converged:.0f} s after `run` started")

        poller = Poller(chain_url)
        first = await poller.finalized()
        node_before = await poller.call("dev_requestCounts", [])
        pr_before = await asyncio.to_thread(sim_requests, sim_base)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rss = {name: [rss_mb(pid)] for name, pid in pids.items()}
        wall = time.monotonic()
        while (await poller.finalized()) < first + args.steady_blocks:
            if run.poll() is not None:
                raise SystemExit(f"poolkeeper run exited with {run.returncode}")
            await asyncio.sleep(5)
            for name, pid in pids.items():
                rss[name].append(rss_mb(pid))
        blocks = (await poller.finalized()) - first
        wall = time.monotonic() - wall
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        node_after = await poller.call("dev_requestCounts", [])
        pr_after = await asyncio.to_thread(sim_requests, sim_base)
        node = sum(node_after.values()) - sum(node_before.values()) - poller.calls
        pr = Counter[str]()
        for worker, counts in pr_after.items():
            for method, n in counts.items():
                pr[method] += n - pr_before.get(worker, {}).get(method, 0)
        still = await computing(chain_url, args.pools)
        await poller.rpc.close()
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
        log.close()

    print(f"steady state: {blocks} blocks in {wall:.0f} s; {still} of {total} still computing")
    print(f"  node requests per block (product): {node / blocks:.1f}")
    per_worker = sum(pr.values()) / total / blocks
    methods = ", ".join(f"{m} {n / total / blocks:.3f}" for m, n in sorted(pr.items()))
    print(f"  pRuntime requests per worker per block: {per_worker:.3f} ({methods})")
    for name, seconds in cpu.items():
        print(
            f"  CPU {name}: {seconds:.1f} s = {seconds / blocks:.3f} s per block "
            f"({100 * seconds / wall:.0f} % of one core)"
        )
    settled = SETTLE_SECONDS // 5  # samples are 5 s apart
    for name, sizes in rss.items():
        print(
            f"  RSS of {name}: first {sizes[0]:.0f} MB, last {sizes[-1]:.0f} MB, "
            f"max {max(sizes):.0f} MB"
        )
        later = sizes[settled:]
        if name == "run" and len(later) > 1:
            growth = 100 * (later[-1] - later[0]) / later[0]
            print(
                f"  RSS of run after the first {SETTLE_SECONDS // 60} minutes: first "
                f"{later[0]:.0f} MB, last {later[-1]:.0f} MB, min {min(later):.0f} MB, "
                f"max {max(later):.0f} MB, growth {growth:+.1f} %"
            )
    extrinsics, calls = extrinsics_by_kind(Path(inventory.parent / "state" / "journal.sqlite"))
    print("extrinsics by kind (whole run; calls in brackets):")
    for kind, n in sorted(extrinsics.items()):
        per_100 = 100 * n / total
        print(f"  {kind}: {n} extrinsics ({calls[kind]} calls), {per_100:.1f} per 100 workers")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--workers-per-pool", type=int, default=200)
    parser.add_argument("--block-time", default="12s")
    parser.add_argument("--steady-blocks", type=int, default=100)
    parser.add_argument("--loop-interval", type=float, default=30.0)
    parser.add_argument("--converge-timeout", type=float, default=7200.0)
    parser.add_argument("--heartbeat-interval", type=int, default=1, help="blocks")
    parser.add_argument(
        "--expected-heartbeats", type=int, default=20, help="workers per challenge; 0: all"
    )
    parser.add_argument("--run-log", help="keep `run`'s output in this file")
    args = parser.parse_args()
    # a SIGTERM ends the script through its `finally`s: no simulator or `run` left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    total = args.pools * args.workers_per_pool
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ready = tmp / "ready.json"
        sim_cmd = [sys.executable, "-m", "poolkeeper_devnet.pruntime", "--workers", str(total)]
        sim_cmd += ["--port", "0", "--ready-file", str(ready), "--seed", "scenario"]
        sim = subprocess.Popen(sim_cmd, env=env, **quiet)  # type: ignore[call-overload]
        processes = [sim]
        try:
            wait_for(lambda: ready.exists() and ready.read_text(), "the pRuntime simulator", 300)
            endpoints = json.loads(ready.read_text())["workers"]
            port = free_port()
            chain_url = f"ws://127.0.0.1:{port}"
            inventory = write_inventory(tmp, chain_url, endpoints, args.pools, args.loop_interval)
            desired = load_inventory(inventory)
            ring = KeyRing(desired, Mnemonic(PHRASE))
            addresses = {a.name: ring.address(a.name) for a in desired.accounts}
            genesis = genesis_for(desired, addresses, cool_down=60)
            # Khala's liveness load: a challenge every block sampling about 20 workers
            # (phala-blockchain's DEFAULT_EXPECTED_HEARTBEAT_COUNT); `devnet up` asks every
            # computing worker every 5 blocks, which tests want and 10,000 workers is not.
            genesis["phala"]["heartbeat_interval"] = args.heartbeat_interval
            if args.expected_heartbeats > 0:
                genesis["phala"]["expected_heartbeats"] = args.expected_heartbeats
            genesis_file = tmp / "genesis.json"
            genesis_file.write_text(json.dumps(genesis), encoding="utf-8")
            chain_cmd = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
            chain_cmd += ["--genesis", str(genesis_file), "--block-time", args.block_time]
            chain = subprocess.Popen(chain_cmd, env=env, **quiet)  # type: ignore[call-overload]
            processes.append(chain)
            wait_for(lambda: listening(port), "the devnet chain start", 120)
            print(
                f"{args.pools} pools x {args.workers_per_pool} workers = {total} uninitialised "
                f"pRuntimes, blocks every {args.block_time}, observe passes every "
                f"{args.loop_interval} s"
            )
            sim_base = endpoints[0].rsplit("/w/", 1)[0]
            pids = {"chain simulator": chain.pid, "pRuntime simulator": sim.pid}
            asyncio.run(scenario(args, chain_url, inventory, sim_base, pids))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
