"""pRuntime message codec: encode and decode times of the messages on the hot paths.

Measures, in this process, what ``poolkeeper.pruntime.messages`` costs per message:
``PhactoryInfo`` decode (observe: one per pRuntime per pass), ``SyncedTo`` decode and
``HeadersToSync``/``Blocks`` encode (relays: one each per worker per block), and
``Blocks`` of growing size (catch-up batches). Run it against two source trees to compare
codecs side by side:

    PYTHONPATH=src .venv/bin/python benchmarks/pruntime_codec.py
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from poolkeeper.pruntime import messages as m


def _per_call(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    info = m.PhactoryInfo(
        initialized=True,
        registered=True,
        genesis_block_hash="ab" * 32,
        public_key="ef" * 32,
        ecdh_public_key="12" * 32,
        headernum=1234,
        para_headernum=77,
        blocknum=1200,
        state_root="cd" * 32,
        pending_messages=3,
        version="2.2.0",
        git_revision="abc",
        memory_usage=m.MemoryUsage(rust_used=1 << 20, free=1 << 30),
        system=m.SystemInfo(
            registered=True, public_key="ef" * 32, gatekeeper=m.GatekeeperStatus(role=0)
        ),
        supported_attestation_methods=("none", "epid"),
        current_block_time=1_700_000_000_000,
    )
    encoded = info.encode()
    synced = m.SyncedTo(1234).encode()
    headers = m.HeadersToSync(b"y" * 3000, None)
    print(f"PhactoryInfo decode: {_per_call(lambda: m.PhactoryInfo.decode(encoded), 20000):.1f} µs")
    print(f"PhactoryInfo encode: {_per_call(info.encode, 20000):.1f} µs")
    print(f"SyncedTo decode: {_per_call(lambda: m.SyncedTo.decode(synced), 20000):.1f} µs")
    print(f"HeadersToSync (3 kB) encode: {_per_call(headers.encode, 20000):.1f} µs")
    for size in (3_000, 50_000, 200_000, 2_000_000):
        blocks = m.Blocks(b"x" * size)
        number = max(20, 2_000_000 // size)
        print(f"Blocks ({size:,} bytes) encode: {_per_call(blocks.encode, number):.1f} µs")


if __name__ == "__main__":
    main()
