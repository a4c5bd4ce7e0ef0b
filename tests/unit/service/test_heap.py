"""``run`` gives freed heap memory back after each pass (``poolkeeper._heap``)."""

from __future__ import annotations

import threading
from pathlib import Path

from poolkeeper._heap import _glibc, heap_trimmer


class _FakeLibc:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(pad)
        return 1


def test_trims_with_no_padding_through_the_c_library() -> None:
    libc = _FakeLibc()
    trim = heap_trimmer(libc)
    assert trim() is True
    assert libc.calls == [0]


def test_without_malloc_trim_it_does_nothing() -> None:
    assert heap_trimmer(object())() is False


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_holes_in_a_thread_arena_go_back_to_the_os() -> None:
    """The case measured in ``run``: a thread's arena full of freed chunks below live
    ones. glibc does not return those by itself; the trimmer does."""
    if getattr(_glibc(), "malloc_trim", None) is None or not Path("/proc/self/status").exists():
        assert heap_trimmer()() is False  # no glibc: nothing to trim, and it says so
        return
    kept: list[bytes] = []

    def fragment() -> None:
        chunks = [b"x" * (32 * 1024) for _ in range(3000)]  # 96 MB touched, < mmap threshold
        kept.extend(chunks[::100])  # live chunks pin every hole below them
        chunks.clear()

    worker = threading.Thread(target=fragment)
    worker.start()
    worker.join()
    before = _rss_kb()
    heap_trimmer()()
    after = _rss_kb()
    assert before - after > 40 * 1024, (before, after)
    assert len(kept) == 30
