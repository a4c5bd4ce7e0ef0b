"""Memory diagnosis for long ``poolkeeper run`` soaks: tracemalloc snapshots on a timer.

Why: RSS alone cannot tell a leak (Python objects piling up) from allocator behaviour
(freed memory the C allocator keeps). With ``POOLKEEPER_TRACEMALLOC=<prefix>`` set, ``run``
starts tracemalloc and a daemon thread dumps a snapshot to ``<prefix>-<n>.snap`` every
``POOLKEEPER_TRACEMALLOC_SECONDS`` (default 60), and appends one line per dump to
``<prefix>.log`` (elapsed seconds, traced MB now and at its peak since the last dump, RSS
MB, live objects, bytes held by the relay source caches). Compare two dumps
with ``benchmarks/memdiff.py``. Off (and free) unless the variable is set.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "POOLKEEPER_TRACEMALLOC"
ENV_SECONDS = "POOLKEEPER_TRACEMALLOC_SECONDS"
FRAMES = 12


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _byte_lru_bytes() -> int:
    """Bytes charged in every ``ByteLru`` alive (the relay source caches)."""
    from poolkeeper.chain._lru import ByteLru

    return sum(o.bytes for o in gc.get_objects() if isinstance(o, ByteLru))


def start_from_env(environ: Mapping[str, str]) -> threading.Thread | None:
    """Start tracing and the dump thread when ``POOLKEEPER_TRACEMALLOC`` is set."""
    prefix = environ.get(ENV_PREFIX)
    if not prefix:
        return None
    seconds = float(environ.get(ENV_SECONDS, "60"))
    tracemalloc.start(FRAMES)
    started = time.monotonic()

    def dump_forever() -> None:
        n = 0
        while True:
            time.sleep(seconds)
            n += 1
            snapshot = tracemalloc.take_snapshot()
            snapshot.dump(f"{prefix}-{n:03d}.snap")
            traced, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            line = (
                f"{time.monotonic() - started:.0f} traced_mb={traced / 1e6:.1f}"
                f" peak_since_last_mb={peak / 1e6:.1f}"
                f" rss_mb={_rss_mb():.1f} objects={len(gc.get_objects())}"
                f" byte_lru_mb={_byte_lru_bytes() / 1e6:.1f}\n"
            )
            with open(f"{prefix}.log", "a", encoding="utf-8") as handle:
                handle.write(line)

    thread = threading.Thread(target=dump_forever, name="tracemalloc-dump", daemon=True)
    thread.start()
    return thread


def start() -> threading.Thread | None:
    return start_from_env(os.environ)
