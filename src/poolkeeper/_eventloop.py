"""The event loop every async command of the CLI runs on.

At thousands of workers `run` spends most of its CPU in the event loop's own machinery:
each pRuntime request is a future, a timer, a write and a read, twice per worker per
block. uvloop (libuv, in C) does the same work for a fraction of the CPU
(docs/benchmarks.md, "Relays at the tip: the event loop"), so it is the loop when it is
installed (a dependency on Linux and macOS). ``POOLKEEPER_EVENT_LOOP=asyncio`` picks the
standard library's loop instead, to rule the loop out when diagnosing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "POOLKEEPER_EVENT_LOOP"


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop ``run`` will use in this environment."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on the loop ``loop_name()`` names."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)
