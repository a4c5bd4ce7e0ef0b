"""Give memory the C allocator has freed back to the operating system, after each pass.

Why: on the devnet soak (docs/benchmarks.md, "Soak"), the RSS of ``poolkeeper run`` kept
growing while what Python objects hold (tracemalloc) stayed flat. glibc's malloc keeps
freed chunks in its arenas instead of returning them: a thread arena of a 300-worker
``run`` held 58 MB with 2.7 MB in use, and ``malloc_trim(0)`` (called from a debugger)
took RSS from 276 to 237 MB. Every pass frees the replies, plans and relay chunks of the
one before, so ``run`` trims once per pass. Elsewhere than glibc (musl, macOS) there is
no ``malloc_trim`` and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any


def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def heap_trimmer(libc: Any = None) -> Callable[[], bool]:
    """A function returning freed heap pages to the OS (``malloc_trim(0)``); it answers
    whether memory was released. A no-op answering False without glibc.

    ``libc`` is the C library to call (default: this process's)."""
    lib = libc if libc is not None else _glibc()
    trim = getattr(lib, "malloc_trim", None) if lib is not None else None
    if trim is None:
        return lambda: False

    def trim_heap() -> bool:
        return bool(trim(0))

    return trim_heap
