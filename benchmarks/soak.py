"""Soak: ``poolkeeper run`` on the devnet for a long time, its memory sampled.

Target (issue 12): RSS grows by at most 10 % after the first 5 minutes; RSS <= 400 MB at
10,000 workers.

It starts the devnet chain (its own process, ``--block-time``) with a genesis funding the
inventory's accounts and holding its pools (``devnet up``'s genesis), and one pRuntime
simulator process serving ``--workers`` pRuntimes on one port (``/w/<i>``). The
inventory declares every worker computing in one of ``ceil(workers / 200)`` pools, so
``run`` does its whole job: relays initialise and sync every pRuntime, register the
workers, carry benchmark reports and heartbeats, the pools add them and start computing.
``run`` is the real command line, a subprocess (``--log-format json``); its RSS
(``/proc/<pid>/status`` VmRSS) is sampled every ``--sample`` seconds.

Printed: every sample (elapsed, RSS MB, passes logged), then the RSS at 5 minutes, at the
end, the growth after the first 5 minutes, and the maximum; and the CPU each process
(``run``, chain simulator, pRuntime simulator) used after the first 5 minutes, as a share of
one core and per block (blocks counted from the chain's best block number, read from its
JSON-RPC ``chain_getHeader`` at 5 minutes and at the end). ``run`` logs where its RSS sits
(``POOLKEEPER_MEMSTATS``, ``poolkeeper._memtrace``: pymalloc arenas, glibc malloc, relay
caches) to ``memstats.log`` in the work dir; its first line after 5 minutes and its last
are printed too.

    .venv/bin/python benchmarks/soak.py [--workers 1000] [--minutes 30] [--block-time 3s]
        [--sample 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests._ports import free_port  # noqa: E402

from poolkeeper.inventory import load_inventory  # noqa: E402
from poolkeeper_devnet.command import _addresses, genesis_for  # noqa: E402

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
POOL_SIZE = 200
"""Workers per pool (the chain's MaxPoolWorkers)."""
WARM_UP_SECONDS = 300


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory (``VmRSS``), or its high-water mark (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def best_block(port: int) -> int | None:
    """The chain's best block number over its WebSocket JSON-RPC, or None if unreadable."""
    try:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{port}", open_timeout=10) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_getHeader"}))
            reply = json.loads(ws.recv(timeout=10))
        return int(reply["result"]["number"], 16)
    except Exception:  # a figure we can do without
        return None


def write_inventory(directory: Path, workers: int, chain_url: str, pruntime_port: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pools = max(1, -(-workers // POOL_SIZE))
    accounts = [
        "accounts:",
        "  - {name: owner, role: owner, derivation: owner}",
        "  - {name: funding, role: funding, derivation: funding}",
        "  - name: relay-signer",
        "    role: relay_signer",
        "    derivation: relay",
        "    top_up: {from: funding, to: 500 PHA, max_per_day: 50000 PHA}",
    ]
    pool_lines = ["pools:"]
    for pid in range(pools):
        accounts.append(f"  - name: operator-{pid}")
        accounts.append("    role: operator")
        accounts.append(f"    derivation: operator//{pid}")
        accounts.append("    top_up: {from: funding, to: 100 PHA, max_per_day: 5000 PHA}")
        pool_lines.append(
            f"  - {{name: pool-{pid}, pid: {pid}, owner: owner, operator: operator-{pid},"
            " default_stake: 100 PHA}"
        )
    worker_lines = ["workers:"]
    for i in range(workers):
        worker_lines.append(
            f"  - {{name: w{i:05d}, endpoint: 'http://127.0.0.1:{pruntime_port}/w/{i}',"
            f" pool: pool-{i // POOL_SIZE}}}"
        )
    (directory / "accounts.yaml").write_text("\n".join(accounts) + "\n")
    (directory / "pools.yaml").write_text("\n".join(pool_lines) + "\n")
    (directory / "workers.yaml").write_text("\n".join(worker_lines) + "\n")
    (directory / "settings.yaml").write_text(
        "settings:\n  network: devnet\n"
        f'  chain: {{endpoints: ["{chain_url}"], wait_for: inclusion}}\n'
        "  secrets: {env: POOLKEEPER_MNEMONIC}\n"
        "  relay: {attestation_provider: none, sync_blocks: 4}\n"
        "  loop: {interval_seconds: 30}\n"
        "  pruntime_concurrency: 500\n"
        "  pruntime_timeout_seconds: 30\n"
        "  state_dir: state\n"
    )


def spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=log.parent,
        start_new_session=True,
    )


def wait_until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready within {seconds:.0f}s")


def count_events(log: Path, names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    with log.open("rb") as handle:
        for raw in handle:
            try:
                event = json.loads(raw).get("event")
            except ValueError:
                continue
            if event in counts:
                counts[event] += 1
    return counts


def last_pass(log: Path) -> str:
    last = "none"
    with log.open("rb") as handle:
        for raw in handle:
            if b'"pass.done"' in raw:
                last = json.loads(raw)["message"]
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--block-time", default="3s")
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="poolkeeper-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "POOLKEEPER_MNEMONIC": PHRASE, "PYTHONPATH": str(ROOT / "src")}
    chain_port, pruntime_port = free_port(), free_port()
    inventory = work / "inventory"
    write_inventory(inventory, args.workers, f"ws://127.0.0.1:{chain_port}", pruntime_port)
    os.environ["POOLKEEPER_MNEMONIC"] = PHRASE
    desired = load_inventory(inventory)
    genesis = genesis_for(desired, _addresses(desired, inventory), cool_down=60)
    genesis["block_time"] = args.block_time
    (work / "genesis.json").write_text(json.dumps(genesis))

    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            spawn(
                [
                    "-m",
                    "poolkeeper_devnet.chain",
                    "--port",
                    str(chain_port),
                    "--genesis",
                    str(work / "genesis.json"),
                ],
                work / "chain.log",
                env,
            )
        )
        processes.append(
            spawn(
                [
                    "-m",
                    "poolkeeper_devnet.pruntime",
                    "--workers",
                    str(args.workers),
                    "--port",
                    str(pruntime_port),
                    "--seed",
                    "soak",
                ],
                work / "pruntime.log",
                env,
            )
        )
        wait_until(lambda: listening(chain_port) and listening(pruntime_port), 300, "devnet")
        run_log = work / "run.jsonl"
        memstats = work / "memstats.log"
        run = spawn(
            ["-m", "poolkeeper", "run", str(inventory), "--log-format", "json"],
            run_log,
            {
                "POOLKEEPER_MEMSTATS": str(memstats),
                "POOLKEEPER_MEMSTATS_SECONDS": str(args.sample),
                **env,
            },
        )
        processes.append(run)
        print(
            f"soak: {args.workers} workers, {args.minutes:g} min, block time {args.block_time},"
            f" sampling every {args.sample:g}s; work dir {work}",
            flush=True,
        )
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        names = ("run", "chain simulator", "pRuntime simulator")
        pids = (run.pid, processes[0].pid, processes[1].pid)
        cpu_at_warm: tuple[float, ...] | None = None
        block_at_warm: int | None = None
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            if run.poll() is not None:
                raise SystemExit(f"run exited with {run.returncode}; see {run_log}")
            rss = rss_mb(run.pid)
            samples.append((elapsed, rss))
            if cpu_at_warm is None and elapsed >= WARM_UP_SECONDS:
                cpu_at_warm = (elapsed, *(cpu_seconds(pid) for pid in pids))
                block_at_warm = best_block(chain_port)
            print(f"{elapsed:7.0f}s  rss {rss:7.1f} MB  {last_pass(run_log)}", flush=True)
            time.sleep(args.sample)
        high_water = rss_mb(run.pid, "VmHWM")
        cpu_at_end = (time.monotonic() - started, *(cpu_seconds(pid) for pid in pids))
        block_at_end = best_block(chain_port)
        after = [rss for t, rss in samples if t >= WARM_UP_SECONDS]
        peak = max(rss for _, rss in samples)
        if after:
            growth = (after[-1] - after[0]) / after[0] * 100
            print(
                f"rss at 5 min {after[0]:.1f} MB, at the end {after[-1]:.1f} MB: growth after"
                f" the first 5 min {growth:+.1f} % (max within that window"
                f" {max(after):.1f} MB)"
            )
        else:
            print("shorter than 5 minutes: no growth figure")
        if cpu_at_warm is not None:
            window = cpu_at_end[0] - cpu_at_warm[0]
            blocks = (
                block_at_end - block_at_warm
                if block_at_end is not None and block_at_warm is not None
                else None
            )
            print(
                f"after the first 5 min: {window:.0f} s, "
                + (f"{blocks} blocks" if blocks else "blocks not read")
            )
            for name, before, after_cpu in zip(names, cpu_at_warm[1:], cpu_at_end[1:], strict=True):
                used = after_cpu - before
                per_block = f", {used / blocks:.2f} s per block" if blocks else ""
                share = used / window * 100
                print(f"  cpu {name}: {used:.0f} s = {share:.0f} % of one core{per_block}")
        if memstats.exists():
            lines = memstats.read_text().splitlines()
            warm = [line for line in lines if float(line.split()[0]) >= WARM_UP_SECONDS]
            for line in warm[:1] + warm[-1:]:
                print(f"  memstats at {line}")
        print(
            f"max rss {peak:.1f} MB in the samples, high-water mark (VmHWM) {high_water:.1f} MB,"
            f" over {samples[-1][0] / 60:.1f} min; load average {os.getloadavg()[0]:.1f}"
        )
        # The figures first: a ``run`` slow to stop (10,000 workers took 135 s on a loaded
        # machine) must not lose them.
        stopping = time.monotonic()
        run.send_signal(signal.SIGTERM)
        try:
            code: int | str = run.wait(300)
        except subprocess.TimeoutExpired:
            code = "nothing (still running after 300 s)"
        events = count_events(run_log, ("pass.done", "action.done", "pass.error", "pass.timeout"))
        print(
            f"run exited with {code} {time.monotonic() - stopping:.0f} s after SIGTERM;"
            f" events logged: {events}; last pass: {last_pass(run_log)}"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
