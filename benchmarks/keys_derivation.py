"""Figures for key derivation and `accounts generate`.

Derivation runs whenever poolkeeper starts signing and whenever `accounts generate`
or `accounts list` runs; this shows what it costs: stretching the mnemonic once
(PBKDF2, 2048 rounds), then one sr25519 hard derivation per junction.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from poolkeeper.keys import Mnemonic, derive_keys, generate_addresses, redact

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def _median_ms(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    mnemonic = Mnemonic(PHRASE)
    one = _median_ms(20, lambda: derive_keys(mnemonic, ["operator//pool-a"]))
    labels = [f"operator//pool-{i}" for i in range(200)]
    many = _median_ms(5, lambda: derive_keys(mnemonic, labels))
    print(f"derive 1 account (mnemonic stretch + 3 junctions): {one:.2f} ms")
    print(f"derive 200 accounts (one stretch, 3 junctions each): {many:.1f} ms")
    print(f"per extra account: {(many - one) / 199:.3f} ms")

    line = (
        "relay worker-0123 synced block 0x" + "ab" * 32 + " to pRuntime http://10.0.0.1:8000"
        " (took 12 ms) header hash 0x" + "cd" * 32
    )
    per_record = _median_ms(5, lambda: [redact(line) for _ in range(1000)])
    print(
        f"redact a 170-character log line with 2 block hashes, 400+ secrets registered: "
        f"{per_record:.1f} µs"
    )

    lines = ["# accounts\naccounts:\n"]
    for i in range(200):
        lines.append(
            f"  - name: op-{i}   # operator of pool {i}\n    role: operator\n"
            f"    derivation: operator//pool-{i}\n    warn_below: 20 PHA\n"
        )
    text = "".join(lines)
    times = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "accounts.yaml").write_text(text)
            start = time.perf_counter()
            generate_addresses(root, mnemonic)
            times.append((time.perf_counter() - start) * 1000)
    print(
        "generate: 200 accounts in one file, write all addresses: "
        f"{statistics.median(times):.0f} ms"
    )


if __name__ == "__main__":
    main()
