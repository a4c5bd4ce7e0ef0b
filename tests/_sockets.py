"""Counting a process's TCP connections to a port, from /proc (Linux), without psutil.

Why: the chain adapter promises one socket per endpoint; tests and
``benchmarks/sockets_per_endpoint.py`` check it the same way.
"""

from __future__ import annotations

import os
from pathlib import Path


def established_to(pid: int, port: int) -> int:
    """ESTABLISHED TCP connections of process ``pid`` whose remote port is ``port`` (its
    socket inodes in ``/proc/PID/fd`` matched in ``/proc/net/tcp*``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    count += 1
    return count
