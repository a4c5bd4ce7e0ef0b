"""Sockets ``poolkeeper run`` holds open to its chain endpoint, sampled while it works.

Why: the chain adapter once opened up to four websockets per endpoint (substrate-
interface's own, the pipelined reads, the head subscription, the relays); they now share
one. This starts the sample devnet (``inventory/``: 8 workers, relays, registrations,
pools, top-ups), runs ``poolkeeper run`` on it and counts, every 0.1 s, the ESTABLISHED
TCP connections from the ``run`` process to the chain's port (its socket inodes in
``/proc/PID/fd`` matched against ``/proc/net/tcp*``; ``ss -tnp state established
'( dport = :PORT )'`` shows the same).

    python benchmarks/sockets_per_endpoint.py [--src DIR] [--seconds 90]

``--src`` runs another source tree (e.g. an older commit from ``git archive``).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._ports import free_port_run  # noqa: E402
from tests._sockets import established_to  # noqa: E402

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--seconds", type=float, default=90.0)
    args = parser.parse_args()
    env = {**os.environ, "POOLKEEPER_MNEMONIC": PHRASE, "PYTHONPATH": str(args.src)}
    work = Path(tempfile.mkdtemp(prefix="sockets-"))
    chain_port, *pr_ports = free_port_run(9)
    inventory = work / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    for path in inventory.rglob("*.yaml"):
        text = path.read_text()
        text = text.replace("ws://127.0.0.1:9944", f"ws://127.0.0.1:{chain_port}")
        for i in range(8):
            text = text.replace(f"http://127.0.0.1:{8100 + i}", f"http://127.0.0.1:{pr_ports[i]}")
        text = text.replace("interval_seconds: 30", "interval_seconds: 2")
        path.write_text(text)
    cli = [sys.executable, "-m", "poolkeeper"]
    subprocess.run(
        [*cli, "devnet", "up", "inventory", "--state-dir", "devnet", "--cool-down", "4"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=240,
    )
    log = (work / "run.log").open("w")
    loop = subprocess.Popen(
        [*cli, "run", "inventory"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    samples: collections.Counter[int] = collections.Counter()
    try:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and loop.poll() is None:
            samples[established_to(loop.pid, chain_port)] += 1
            time.sleep(0.1)
    finally:
        loop.send_signal(signal.SIGINT)
        loop.wait(60)
        log.close()
        subprocess.run(
            [*cli, "devnet", "down", "--state-dir", "devnet"], cwd=work, env=env, check=False
        )
    output = (work / "run.log").read_text()
    extrinsics = output.count("included") + output.count("in block")
    print(f"source: {args.src}")
    print(f"samples: {sum(samples.values())} over {args.seconds:.0f} s")
    print("sockets to the chain port -> samples:", dict(sorted(samples.items())))
    print(f"max: {max(samples) if samples else 0}")
    print(f"run log lines mentioning inclusion: {extrinsics}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
