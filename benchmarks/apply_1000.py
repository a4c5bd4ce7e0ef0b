"""Apply add_worker + start_computing for 1,000 workers on the devnet, through the product.

Target (issue 5): <= 25 extrinsics and <= 60 s with 1 s blocks.

Each run starts the devnet chain as its own process (1 s blocks) with a genesis in which
1,000 workers are registered and scored but in no pool, operated by the owners of
``--pools`` pools (each run by an operator that is the owner's StakePoolManager proxy, so
every batch is wrapped in ``Proxy.proxy``). The inventory declares every worker computing
in its pool with a stake. A reconcile pass of the product (``Reconciler.reconcile_once``:
observe through the chain adapter, plan with the planner, execute through the journaled
executor) then brings them all to computing.

The pRuntimes are not part of this target: the observer is given a pRuntime source that
reports each worker initialized and synced with its public key (what the real pRuntimes
say once their relays have caught up), and no relays are started.

Figures per run: extrinsics (journal and chain), the time from the first submission to
the last inclusion, blocks spanned, CPU of this process and of the chain simulator; then
min/median/max over the runs. Everything is verified on chain afterwards: every worker
in its pool with session state WorkerIdle and the declared stake.

    .venv/bin/python benchmarks/apply_1000.py [--workers 1000] [--pools 10] [--runs 3]
        [--block-time 1s] [--wait-for inclusion|finalization]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests._ports import free_port  # noqa: E402

from poolkeeper.app import build_ports  # noqa: E402
from poolkeeper.apply.journal import Journal  # noqa: E402
from poolkeeper.chain import SubstrateChain  # noqa: E402
from poolkeeper.inventory import load_inventory  # noqa: E402
from poolkeeper.keys import KeyRing, Mnemonic  # noqa: E402
from poolkeeper.loop import Reconciler  # noqa: E402
from poolkeeper.model.actions import ActionKind  # noqa: E402
from poolkeeper.model.desired import Desired  # noqa: E402
from poolkeeper.model.observed import Observed, PRuntimeInfo, SessionState  # noqa: E402
from poolkeeper.observe.observer import observe  # noqa: E402
from poolkeeper.plan import PlanPolicy  # noqa: E402
from poolkeeper.relay.worker import RelayOptions  # noqa: E402
from poolkeeper_devnet.command import genesis_for  # noqa: E402

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
STAKE_PHA = 1000
MAX_BATCH = 100


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def worker_pubkey(index: int) -> str:
    return hashlib.blake2b(b"apply-1000:" + index.to_bytes(4, "little"), digest_size=32).hexdigest()


def write_inventory(
    directory: Path, workers: int, pools: int, chain_url: str, wait_for: str = "inclusion"
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    accounts = ["accounts:"]
    pool_lines = ["pools:"]
    for pid in range(pools):
        accounts.append(f"  - {{name: owner-{pid}, role: owner, derivation: owner//{pid}}}")
        accounts.append(
            f"  - {{name: operator-{pid}, role: operator, derivation: operator//{pid}}}"
        )
        pool_lines.append(
            f"  - {{name: pool-{pid}, pid: {pid}, owner: owner-{pid}, operator: operator-{pid},"
            f" default_stake: {STAKE_PHA} PHA}}"
        )
    worker_lines = ["workers:"]
    for i in range(workers):
        pool = i * pools // workers
        worker_lines.append(
            f"  - {{name: w{i:04d}, endpoint: 'http://127.0.0.1:9/w/{i}', pool: pool-{pool}}}"
        )
    (directory / "accounts.yaml").write_text("\n".join(accounts) + "\n")
    (directory / "pools.yaml").write_text("\n".join(pool_lines) + "\n")
    (directory / "workers.yaml").write_text("\n".join(worker_lines) + "\n")
    (directory / "settings.yaml").write_text(
        "settings:\n  network: devnet\n"
        f'  chain: {{endpoints: ["{chain_url}"], wait_for: {wait_for}}}\n'
        "  secrets: {env: POOLKEEPER_MNEMONIC}\n"
        "  pruntime_concurrency: 500\n"
    )


def genesis(desired: Desired, addresses: dict[str, str], block_time: str) -> dict[str, Any]:
    """The inventory's devnet genesis, plus every worker registered (scored) in no pool,
    operated by its pool's owner (add_worker requires that)."""
    config = genesis_for(desired, addresses, cool_down=60)
    config["block_time"] = block_time
    pools = {p.name: p for p in desired.pools}
    config["phala"]["workers"] = [
        {
            "pubkey": "0x" + worker_pubkey(i),
            "operator": addresses[pools[w.pool or ""].owner],
            "initial_score": 1000,
        }
        for i, w in enumerate(desired.workers)
    ]
    return config


class SyncedPRuntimes:
    """Every pRuntime initialized, registered and synced to the chain's head."""

    def __init__(self, pubkeys: dict[str, str]) -> None:
        self._pubkeys = pubkeys

    async def get_info(self, endpoint: str) -> PRuntimeInfo:
        return PRuntimeInfo(
            initialized=True,
            registered=True,
            headernum=10**6,
            blocknum=10**6,
            public_key=self._pubkeys[endpoint],
            score=1000,
        )


class ChainOnlyReconciler(Reconciler):
    """The product's reconcile pass with a stand-in pRuntime source and no relays."""

    pruntimes: SyncedPRuntimes

    observe_seconds = 0.0

    async def observe(self) -> Observed:
        started = time.perf_counter()
        observed = await observe(self.desired, self.chain, self.pruntimes)
        self.observe_seconds = time.perf_counter() - started
        return observed

    def relay_plan(self, observed: Observed) -> dict[str, tuple[str, RelayOptions]]:
        return {}


@dataclass
class RunFigures:
    actions: int
    journal_extrinsics: int
    chain_extrinsics: int
    max_calls: int
    max_bytes: int
    submit_to_included: float
    """First extrinsic journaled -> last one seen included."""
    observe: float
    plan_to_first_submit: float
    whole_pass: float
    blocks: int
    """From the best block when the pass started to the block of the last inclusion."""
    waves: list[str]
    client_cpu: float
    chain_cpu: float = 0.0


async def count_on_chain(url: str, first: int, last: int, hashes: set[str]) -> tuple[int, int]:
    """(extrinsics in blocks first..last, how many of them the journal holds)."""
    chain = SubstrateChain(url)
    try:

        def scan(s: Any) -> tuple[int, int]:
            total = mine = 0
            for number in range(first, last + 1):
                block_hash = s.rpc_request("chain_getBlockHash", [number])["result"]
                raw = s.rpc_request("chain_getBlock", [block_hash])["result"]["block"]
                for xt in raw["extrinsics"]:
                    total += 1
                    digest = hashlib.blake2b(bytes.fromhex(xt[2:]), digest_size=32).hexdigest()
                    mine += ("0x" + digest) in hashes
            return total, mine

        return await chain._run(scan)
    finally:
        await chain.close()


async def verify(url: str, desired: Desired, pids: list[int]) -> None:
    chain = SubstrateChain(url)
    try:
        state = await chain.read_state(pids, ())
    finally:
        await chain.close()
    pid_of = {p.name: p.pid for p in desired.pools}
    problems = []
    for i, worker in enumerate(desired.workers):
        key = worker_pubkey(i)
        pid = pid_of[worker.pool or ""]
        seen = state.workers.get(key)
        if (
            seen is None
            or seen.pool_pid != pid
            or key not in state.pools[pid].workers
            or seen.session_state is not SessionState.WORKER_IDLE
            or seen.stake != STAKE_PHA * 10**12
        ):
            problems.append(f"{worker.name}: {seen}")
    if problems:
        raise SystemExit(f"{len(problems)} workers not computing, e.g. {problems[:3]}")


async def one_pass(url: str, inventory: Path, state_dir: Path) -> tuple[RunFigures, list[int]]:
    desired = load_inventory(inventory)
    pubkeys = {w.endpoint: worker_pubkey(i) for i, w in enumerate(desired.workers)}
    reconciler = ChainOnlyReconciler(
        desired, build_ports(desired, mnemonic=Mnemonic(PHRASE), state_dir=state_dir, chain_url=url)
    )
    reconciler.pruntimes = SyncedPRuntimes(pubkeys)
    try:
        await reconciler.chain.read_state([0], ())  # connect, load metadata: not timed
        head_before = (await reconciler.chain.read_state((), ())).head.best_number
        cpu_before = time.process_time()
        started, started_wall = time.perf_counter(), time.time()
        result = await reconciler.reconcile_once(PlanPolicy())
        finished = time.perf_counter()
        client_cpu = time.process_time() - cpu_before
    finally:
        await reconciler.close()
    failed = [r for r in result.results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} actions failed, e.g. {failed[:3]}")
    kind_of = {a.id: a.kind for a in result.plan.actions}
    if set(kind_of.values()) != {ActionKind.ADD_WORKER, ActionKind.START_COMPUTING}:
        raise SystemExit(f"unexpected plan: {sorted(set(kind_of.values()))}")
    journal = Journal(state_dir / "journal.sqlite")
    entries = journal.entries()
    times = dict(
        journal._db.execute("SELECT extrinsic_hash, created_at FROM extrinsics").fetchall()
    )
    settled = dict(
        journal._db.execute("SELECT extrinsic_hash, updated_at FROM extrinsics").fetchall()
    )
    journal.close()
    blocks = [e.block_number for e in entries if e.block_number is not None]
    hashes = {e.extrinsic_hash for e in entries}
    total, mine = await count_on_chain(url, head_before + 1, max(blocks), hashes)
    if mine != len(entries):
        raise SystemExit(f"journal holds {len(entries)} extrinsics, chain shows {mine}")
    first = min(times.values())
    waves = []
    for kind in (ActionKind.ADD_WORKER, ActionKind.START_COMPUTING):
        wave = [e for e in entries if kind_of[e.action_ids[0]] is kind]
        wave_blocks = sorted({e.block_number or 0 for e in wave})
        waves.append(
            f"{kind.value}: {len(wave)} extrinsics journaled "
            f"+{min(times[e.extrinsic_hash] for e in wave) - first:.1f}.."
            f"+{max(times[e.extrinsic_hash] for e in wave) - first:.1f} s, "
            f"included in block(s) {wave_blocks}, seen by "
            f"+{max(settled[e.extrinsic_hash] for e in wave) - first:.1f} s"
        )
    figures = RunFigures(
        actions=len(result.plan.actions),
        journal_extrinsics=len(entries),
        chain_extrinsics=total,
        max_calls=max(len(e.action_ids) for e in entries),
        max_bytes=max(len(e.data) for e in entries),
        submit_to_included=max(settled.values()) - first,
        observe=reconciler.observe_seconds,
        plan_to_first_submit=first - started_wall - reconciler.observe_seconds,
        whole_pass=finished - started,
        blocks=max(blocks) - head_before,
        waves=waves,
        client_cpu=client_cpu,
    )
    return figures, [p.pid for p in desired.pools if p.pid is not None]


def run_once(args: argparse.Namespace, tmp: Path) -> RunFigures:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POOLKEEPER_MNEMONIC": PHRASE}
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    inventory = tmp / "inventory"
    write_inventory(inventory, args.workers, args.pools, url, args.wait_for)
    desired = load_inventory(inventory)
    ring = KeyRing(desired, Mnemonic(PHRASE))
    addresses = {a.name: ring.address(a.name) for a in desired.accounts}
    genesis_file = tmp / "genesis.json"
    genesis_file.write_text(json.dumps(genesis(desired, addresses, args.block_time)))
    command = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
    command += ["--genesis", str(genesis_file), "--finality-lag", "2"]
    log = (tmp / "chain.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the devnet chain did not start (see {tmp / 'chain.log'})")
            time.sleep(0.1)
        time.sleep(2.5)  # a few blocks, so that the finalized head is past genesis
        chain_cpu = cpu_seconds(process.pid)
        figures, pids = asyncio.run(one_pass(url, inventory, tmp / "state"))
        figures.chain_cpu = cpu_seconds(process.pid) - chain_cpu
        asyncio.run(verify(url, desired, pids))
        return figures
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--block-time", default="1s")
    parser.add_argument("--wait-for", choices=("inclusion", "finalization"), default="inclusion")
    args = parser.parse_args()
    target = -(-args.workers // MAX_BATCH) * 2
    print(
        f"apply: add_worker + start_computing for {args.workers} workers in {args.pools} "
        f"proxied pools, {args.block_time} blocks, waiting for {args.wait_for} "
        f"(ideal: {target} extrinsics)"
    )
    runs: list[RunFigures] = []
    for n in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            f = run_once(args, Path(tmp))
        runs.append(f)
        print(
            f"run {n}: {f.actions} actions in {f.journal_extrinsics} extrinsics (journal), "
            f"{f.chain_extrinsics} on chain, at most {f.max_calls} calls and {f.max_bytes} bytes "
            "each; "
            f"first submit -> all included {f.submit_to_included:.1f} s; "
            f"{f.blocks} blocks from the start of the pass; observe {f.observe:.1f} s, "
            f"plan+fees+signing until the first submit {f.plan_to_first_submit:.1f} s, "
            f"whole pass {f.whole_pass:.1f} s; CPU: client {f.client_cpu:.1f} s, "
            f"chain simulator {f.chain_cpu:.1f} s; all workers computing on chain"
        )
        for wave in f.waves:
            print(f"    {wave}")
    names = ("journal_extrinsics", "submit_to_included", "whole_pass", "blocks", "client_cpu")
    for name in (*names, "chain_cpu"):
        values = [float(getattr(r, name)) for r in runs]
        print(
            f"{name}: min {min(values):.1f}, median {statistics.median(values):.1f}, "
            f"max {max(values):.1f}"
        )


if __name__ == "__main__":
    main()
