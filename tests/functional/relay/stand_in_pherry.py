"""A stand-in for pherry in tests of external relay supervision (not a relay at all).

It takes pherry-like flags and reads what to do from ``<work dir>/control`` when it
starts: ``run`` (print a line every 0.1 s), ``exit N`` (print, then exit with N),
``hang`` (ignore SIGTERM and keep running), optionally followed by ``spawn`` (start a
grandchild that sleeps, to check that the whole process group is stopped). Each start
appends one JSON line to ``<work dir>/starts.jsonl``: pid, the grandchild's pid, argv,
and how the key reached it (never the key itself). It prints the key it was handed, so
tests can check that the captured log masks it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pruntime-endpoint", required=True)
    parser.add_argument("--substrate-ws-endpoint", required=True)
    parser.add_argument("--operator", default="")
    parser.add_argument("--key-file", default="")
    parser.add_argument("--work-dir", required=True)
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    control = (work / "control").read_text().split() if (work / "control").exists() else []
    key_from_file = Path(args.key_file).read_text() if args.key_file else None
    key_from_env = os.environ.get("POOLKEEPER_RELAY_SURI")
    grandchild = None
    if "spawn" in control:
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid
    record = {
        "pid": os.getpid(),
        "time": time.time(),
        "grandchild": grandchild,
        "argv": sys.argv[1:],
        "key_file_matches_env": key_from_file is not None and key_from_file == key_from_env,
        "key_file_mode": oct(os.stat(args.key_file).st_mode & 0o777) if args.key_file else None,
        "master_secret_in_env": "POOLKEEPER_TEST_MASTER" in os.environ,
    }
    with (work / "starts.jsonl").open("a") as out:
        out.write(json.dumps(record) + "\n")
    print(f"stand-in pherry: syncing {args.pruntime_endpoint} from {args.substrate_ws_endpoint}")
    print(f"signing with {key_from_env}", flush=True)
    if control[:1] == ["exit"]:
        print("stand-in pherry: giving up", flush=True)
        return int(control[1])
    if "hang" in control:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    n = 0
    while True:
        n += 1
        print(f"synced block {n}", flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
