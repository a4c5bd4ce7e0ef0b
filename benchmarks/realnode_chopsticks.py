"""What the real-runtime peer costs: chopsticks start time and memory, and inclusion latency.

The realnode tests start chopsticks once per session; these figures say how much of the
suite's time and of the machine's memory that takes, and how long one signed extrinsic
takes from submission to inclusion when the real Asset Hub wasm executes it.

Run: .venv/bin/python benchmarks/realnode_chopsticks.py   (after npm install in tools/chopsticks)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers import chopsticks_peer
from tests.realnode import _chopsticks

TRANSFERS = 5


def main() -> None:
    reason = _chopsticks.unavailable_reason()
    if reason is not None:
        print(f"cannot measure: {reason}")
        raise SystemExit(1)
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        spec = _chopsticks.extract_chain_spec(Path(workdir))
        print(f"chain spec extraction: {time.perf_counter() - started:.2f} s")
        spec.unlink()
        with chopsticks_peer(Path(workdir)) as peer:
            print(peer.report())
            substrate = peer.connect()
            started = time.perf_counter()
            substrate.init_runtime()
            print(f"substrate-interface connect + metadata: {time.perf_counter() - started:.2f} s")
            sender, dest = peer.new_account("bench", 100), peer.new_account("bench-dest", 1)
            latencies = []
            for _ in range(TRANSFERS):
                call = substrate.compose_call(
                    "Balances", "transfer_keep_alive", {"dest": dest.ss58_address, "value": 1}
                )
                extrinsic = substrate.create_signed_extrinsic(call, sender)
                started = time.perf_counter()
                receipt = substrate.submit_extrinsic(extrinsic, wait_for_inclusion=True)
                latencies.append(time.perf_counter() - started)
                assert receipt.is_success
            print(
                f"transfer_keep_alive submit -> inclusion, median of {TRANSFERS}: "
                f"{statistics.median(latencies) * 1000:.0f} ms"
            )
            head = substrate.get_chain_head()
            finalized = substrate.get_chain_finalised_head()
            print(f"finalized head == best head: {head == finalized}")
            substrate.close()
            print(peer.report())


if __name__ == "__main__":
    main()
