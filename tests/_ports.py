"""Free loopback ports for servers that tests start in other processes.

Why this exists: a port found by binding port 0 comes from the kernel's ephemeral range, the
range outgoing connections take their local ports from. A test run opens hundreds of client
connections, so a port that was free when picked can become some client's local port before
the server process binds it, and the server fails with EADDRINUSE. Ports handed out here lie
below the ephemeral range, are proved bindable the way a server binds (SO_REUSEADDR), and are
never handed out twice in one test run.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_run(count: int) -> list[int]:
    """`count` consecutive free ports (the pRuntime simulator serves consecutive ports)."""
    highest = _ephemeral_start() - count
    for _ in range(200):
        base = random.randint(_LOWEST, highest)
        ports = list(range(base, base + count))
        if _handed_out.isdisjoint(ports) and all(_bindable(p) for p in ports):
            _handed_out.update(ports)
            return ports
    raise RuntimeError(f"no run of {count} free loopback ports below {highest + count}")


def free_port() -> int:
    """One free port for a server in another process, or an address where nothing listens."""
    return free_port_run(1)[0]
