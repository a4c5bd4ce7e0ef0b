"""Memory diagnosis for long ``poolkeeper run`` soaks: tracemalloc snapshots on a timer.

Why: RSS alone cannot tell a leak (Python objects piling up) from allocator behaviour
(freed memory the C allocator keeps). With ``POOLKEEPER_TRACEMALLOC=<prefix>`` set, ``run``
starts tracemalloc and a daemon thread dumps a snapshot to ``<prefix>-<n>.snap`` every
``POOLKEEPER_TRACEMALLOC_SECONDS`` (default 60), and appends one line per dump to
``<prefix>.log`` (elapsed seconds, traced MB now and at its peak since the last dump, RSS
MB, live objects, bytes held by the relay source caches). Compare two dumps
with ``benchmarks/memdiff.py``. Off (and free) unless the variable is set.

``POOLKEEPER_MEMSTATS=<file>`` (without tracemalloc, so it costs nothing worth measuring)
appends every ``POOLKEEPER_MEMSTATS_SECONDS`` (default 30) where the RSS sits: pymalloc's
arenas (Python's small objects; an arena returns to the OS only when wholly empty) and
the bytes in use in them, glibc malloc's heap taken from the OS and in use (larger
objects, C libraries), and the relay source caches. RSS growth with flat "in use" figures
is allocator fragmentation; growing "in use" is objects kept. With
``POOLKEEPER_MEMSTATS_CENSUS=<seconds>`` too, ``<file>.census`` gets, that often, the
objects the collector tracks by type (count, bytes of each object with its ``__dict__`` and
the strings, bytes and numbers it refers to directly): which structures the "in use"
figure is made of. Objects frozen at start-up (``gc.freeze``, the chain's metadata) are
not in it. ``POOLKEEPER_MEMSTATS_CENSUS_COLLECT=1`` runs a full collection before each
census (and says what it freed): what is garbage waiting for one is then not counted as
held. ``POOLKEEPER_MEMSTATS_CENSUS_HOLDERS=<type>,...`` (e.g. ``list,dict``) adds
every object of those types counted by who holds it (``Class.attr`` of an instance, a
dict's key, a container, four levels up) with the change since the previous census: the
holder that keeps rising is the leak (``holders()``; reading attributes makes instances'
dicts). ``POOLKEEPER_MEMSTATS_CENSUS_UNFREEZE=1`` moves what ``gc.freeze`` set aside back
to the collector before each census, so a holder frozen at start-up is seen too (full
collections then walk the chain's metadata again: a diagnostic run only). A census walks
every object: seconds of CPU at 10,000 workers, and its own bookkeeping (an int and a set
entry per object) grows pymalloc's arenas, so a run with a census tells what is held, not
the RSS a run without one has.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import types
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "POOLKEEPER_TRACEMALLOC"
ENV_SECONDS = "POOLKEEPER_TRACEMALLOC_SECONDS"
ENV_STATS = "POOLKEEPER_MEMSTATS"
ENV_STATS_SECONDS = "POOLKEEPER_MEMSTATS_SECONDS"
ENV_CENSUS_SECONDS = "POOLKEEPER_MEMSTATS_CENSUS"
ENV_CENSUS_COLLECT = "POOLKEEPER_MEMSTATS_CENSUS_COLLECT"
ENV_CENSUS_HOLDERS = "POOLKEEPER_MEMSTATS_CENSUS_HOLDERS"
ENV_CENSUS_UNFREEZE = "POOLKEEPER_MEMSTATS_CENSUS_UNFREEZE"
_ATOMS = (str, bytes, int, float)
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
    from poolkeeper.chain import cache_bytes

    return cache_bytes()


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    """The process's C library, loaded once: each ``CDLL`` makes its own function pointer
    class, garbage for the cyclic collector when dropped."""
    return ctypes.CDLL(None)


def _pymalloc_figures() -> tuple[float, float, float, float] | None:
    """pymalloc's (MB of arenas allocated, MB in allocated blocks, MB of free blocks in
    pools in use, MB of empty pools in arenas in use), from CPython's own
    ``_PyObject_DebugMallocStats`` written to a scratch file; None where unavailable.
    The last two tell the RSS that fragmentation holds: free space within pools (kept
    for their size class) and empty pools (kept by their arena's other pools)."""
    try:
        libc = _libc()
        stats = ctypes.pythonapi._PyObject_DebugMallocStats
    except (OSError, AttributeError):
        return None
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    stats.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "stats")
        handle = libc.fopen(path.encode(), b"w")
        if not handle:
            return None
        try:
            stats(handle)
        finally:
            libc.fclose(handle)
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    arenas = used = None
    available = unused_pools = 0
    arena_size = 1 << 20  # CPython >= 3.10 on 64-bit, unless the stats say otherwise
    for line in text.splitlines():
        name, _, value = line.partition("=")
        name, number = name.strip(), value.strip().replace(",", "")
        if name == "# arenas allocated current" and number.isdigit():
            arenas = int(number)
        elif name == "# bytes in allocated blocks" and number.isdigit():
            used = int(number)
        elif name == "# bytes in available blocks" and number.isdigit():
            available = int(number)
        elif "unused pools" in name and number.isdigit():
            unused_pools = int(number)
        elif name.endswith("bytes/arena") and "*" in name:
            arena_size = int(name.split("*")[1].split("bytes/arena")[0])
    if arenas is None or used is None:
        return None
    return arenas * arena_size / 1e6, used / 1e6, available / 1e6, unused_pools / 1e6


def _malloc_mb() -> tuple[float, float, float] | None:
    """glibc malloc: (MB taken from the OS, MB in use, MB free in its heaps), every arena
    and mmapped chunk included (``mallinfo2``); None without glibc."""
    try:
        mallinfo2 = _libc().mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (
        (info.arena + info.hblkhd) / 1e6,
        (info.uordblks + info.hblkhd) / 1e6,
        info.fordblks / 1e6,
    )


def memory_line(elapsed: float) -> str:
    """One line of where the RSS sits (``POOLKEEPER_MEMSTATS``)."""
    parts = [f"{elapsed:.0f} rss_mb={_rss_mb():.1f}"]
    pymalloc = _pymalloc_figures()
    if pymalloc is not None:
        parts.append(
            f"pymalloc_arenas_mb={pymalloc[0]:.1f} pymalloc_used_mb={pymalloc[1]:.1f}"
            f" pymalloc_free_blocks_mb={pymalloc[2]:.1f}"
            f" pymalloc_empty_pools_mb={pymalloc[3]:.1f}"
        )
    malloc = _malloc_mb()
    if malloc is not None:
        parts.append(
            f"malloc_os_mb={malloc[0]:.1f} malloc_used_mb={malloc[1]:.1f}"
            f" malloc_free_mb={malloc[2]:.1f}"
        )
    parts.append(f"byte_lru_mb={_byte_lru_bytes() / 1e6:.1f}")
    return " ".join(parts) + "\n"


def census(elapsed: float, top: int = 80) -> str:
    """The collector's objects by type, largest first (``POOLKEEPER_MEMSTATS_CENSUS``).

    An instance is counted with the dicts it refers to directly (its ``__dict__`` when
    there is one: read through the collector, never made by asking for it) and the
    strings, bytes and numbers it or they refer to, each counted once."""
    counted: set[int] = set()
    sizes: dict[str, list[int]] = {}
    objects = gc.get_objects()
    owned: dict[int, list[object]] = {}
    for obj in objects:
        kind = type(obj)
        if kind.__dictoffset__ and kind.__module__ != "builtins" and not isinstance(obj, type):
            dicts: list[object] = [ref for ref in gc.get_referents(obj) if type(ref) is dict]
            if dicts:
                owned[id(obj)] = dicts
    owned_ids = {id(d) for dicts in owned.values() for d in dicts}
    for obj in objects:
        if id(obj) in owned_ids:
            continue
        size = sys.getsizeof(obj)
        parts = [obj, *owned.get(id(obj), ())]
        for part in parts:
            if part is not obj:
                size += sys.getsizeof(part)
            for ref in gc.get_referents(part):
                if type(ref) in _ATOMS and id(ref) not in counted:
                    counted.add(id(ref))
                    size += sys.getsizeof(ref)
        entry = sizes.setdefault(_describe(obj), [0, 0])
        entry[0] += 1
        entry[1] += size
    del objects, owned
    ranked = sorted(sizes.items(), key=lambda item: item[1][1], reverse=True)
    total = sum(size for _, size in sizes.values())
    full = gc.get_stats()[2]["collections"]
    lines = [
        f"# census at {elapsed:.0f} s: {total / 1e6:.1f} MB in {len(sizes)} types"
        f" ({full} full collections so far)"
    ]
    lines += [f"{size / 1e6:9.2f} MB {count:9d} {name}" for name, (count, size) in ranked[:top]]
    return "\n".join(lines) + "\n"


def _describe(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _name_in(holder: object, obj: object) -> object:
    """The key or attribute under which ``holder`` keeps ``obj`` (None: not named)."""
    try:
        return _named(holder, obj)
    except Exception:  # e.g. ReferenceError: a weak proxy whose object is gone
        return None


def _owns_dict(holder: object, obj: object) -> bool:
    try:
        return getattr(holder, "__dict__", None) is obj
    except Exception:
        return False


def _named(holder: object, obj: object) -> object:
    if type(holder) is dict:
        for key, value in holder.items():
            if value is obj:
                return key
        return None
    names: dict[str, object] = {}
    slots = getattr(type(holder), "__slots__", ())
    for slot in slots if isinstance(slots, tuple) else (slots,):
        if isinstance(slot, str):
            names[slot] = getattr(holder, slot, None)
    if hasattr(holder, "__dict__") and not isinstance(holder, type | types.ModuleType):
        names.update(vars(holder))
    for name, value in names.items():
        if value is obj:
            return name
    return None  # a container, or an attribute the instance does not name


def _first_referrers(objects: list[object], targets: set[int]) -> dict[int, object]:
    """For each id in ``targets``: the first tracked object found referring to it (one
    walk over every object; frames left out)."""
    found: dict[int, object] = {}
    for obj in objects:
        if type(obj) is types.FrameType:  # not isinstance: a dead weak proxy raises
            continue
        for ref in gc.get_referents(obj):
            ref_id = id(ref)
            if ref_id in targets and ref_id not in found:
                found[ref_id] = obj
    return found


def holders(
    kinds: frozenset[str], previous: Mapping[str, int], top: int = 30, depth: int = 4
) -> tuple[str, dict[str, int]]:
    """Every tracked object whose type name is in ``kinds``, counted by who holds it:
    ``Class.attr`` of an instance, a dict's key, a container's type, ``depth`` levels up
    (``POOLKEEPER_MEMSTATS_CENSUS_HOLDERS``); with the change since ``previous`` (the
    counts of the last census), so the holder whose count keeps rising is named."""
    objects = gc.get_objects()
    targets = [o for o in objects if type(o).__name__ in kinds]
    labels = [type(o).__name__ for o in targets]
    current: list[object | None] = list(targets)
    mine = {id(objects), id(targets), id(current)}
    levels = [0] * len(targets)
    for _ in range(2 * depth):  # an instance's __dict__ and the instance: one level
        wanted = {id(o) for o in current if o is not None}
        if not wanted:
            break
        referrers = _first_referrers(objects, wanted - mine)
        for i, obj in enumerate(current):
            if obj is None:
                continue
            holder = referrers.get(id(obj))
            if holder is None or id(holder) in mine:
                current[i] = None
                continue
            name = _name_in(holder, obj)
            if type(obj) is dict and _owns_dict(holder, obj):
                # the instance owning this __dict__: "dict[key]" becomes "Class.key"
                head, found, key = labels[i].rpartition(" < dict[")
                if found:
                    labels[i] = f"{head} < {_describe(holder)}.{key[:-1]}"
                else:  # the dict counted is itself an instance's __dict__
                    labels[i] += f" < {_describe(holder)}.__dict__"
                    levels[i] += 1
            elif type(holder) is dict:
                key = name if isinstance(name, str) else repr(name)
                labels[i] += f" < dict[{key[:30]}]"
                levels[i] += 1
            else:
                suffix = f".{name}" if name is not None else ""
                labels[i] += f" < {_describe(holder)}{suffix}"
                levels[i] += 1
            current[i] = holder if levels[i] < depth else None
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    del objects, targets, current
    ranked = sorted(
        counts.items(),
        key=lambda item: (item[1] - previous.get(item[0], 0), item[1]),
        reverse=True,
    )[:top]
    lines = [
        f"# {sum(counts.values())} objects of {', '.join(sorted(kinds))} by holder"
        " (count, change since the last census)"
    ]
    lines += [f"{n:8d} {n - previous.get(label, 0):+7d} {label}" for label, n in ranked]
    return "\n".join(lines) + "\n", counts


def start_stats_from_env(environ: Mapping[str, str]) -> threading.Thread | None:
    """Start the allocator figures thread when ``POOLKEEPER_MEMSTATS`` is set."""
    path = environ.get(ENV_STATS)
    if not path:
        return None
    seconds = float(environ.get(ENV_STATS_SECONDS, "30"))
    census_seconds = float(environ.get(ENV_CENSUS_SECONDS) or 0)
    collect_first = environ.get(ENV_CENSUS_COLLECT) == "1"
    holder_kinds = frozenset(filter(None, (environ.get(ENV_CENSUS_HOLDERS) or "").split(",")))
    unfreeze = environ.get(ENV_CENSUS_UNFREEZE) == "1"
    started = time.monotonic()

    def log_forever() -> None:
        last_census = started
        previous: dict[str, int] = {}
        while True:
            time.sleep(seconds)
            now = time.monotonic()
            line = memory_line(now - started)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)
            if census_seconds and now - last_census >= census_seconds:
                last_census = now
                prefix = ""
                if unfreeze:
                    prefix += f"# {gc.get_freeze_count()} frozen objects unfrozen\n"
                    gc.unfreeze()
                if collect_first:
                    prefix += f"# a full collection before it freed {gc.collect()} objects\n"
                text = prefix + census(now - started)
                if holder_kinds:
                    found, previous = holders(holder_kinds, previous)
                    text += found
                with open(f"{path}.census", "a", encoding="utf-8") as handle:
                    handle.write(text)

    thread = threading.Thread(target=log_forever, name="memstats", daemon=True)
    thread.start()
    return thread


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
    start_stats_from_env(os.environ)
    return start_from_env(os.environ)
