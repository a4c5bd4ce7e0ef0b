"""The soak diagnosis hook (``poolkeeper._memtrace``): off unless asked, and its probe of
the relay source caches counts what they hold."""

from __future__ import annotations

import weakref

from poolkeeper._memtrace import (
    _byte_lru_bytes,
    _pymalloc_figures,
    holders,
    memory_line,
    start_from_env,
    start_stats_from_env,
)
from poolkeeper.chain._lru import ByteLru


def test_off_without_the_variable() -> None:
    assert start_from_env({}) is None
    assert start_from_env({"POOLKEEPER_TRACEMALLOC": ""}) is None


def test_the_cache_probe_counts_bytes_held() -> None:
    before = _byte_lru_bytes()
    cache = ByteLru(1 << 20)
    cache.put(("block", 1), b"x" * 5000)
    assert _byte_lru_bytes() - before == cache.bytes > 5000


def test_memory_line_splits_rss_into_allocators() -> None:
    line = memory_line(12.0)
    fields = dict(part.split("=") for part in line.split()[1:])
    assert line.startswith("12 ") and line.endswith("\n")
    assert float(fields["rss_mb"]) > 0
    # CPython with pymalloc and glibc (the project's Linux targets): both decomposed.
    assert 0 < float(fields["pymalloc_used_mb"]) <= float(fields["pymalloc_arenas_mb"])
    wasted = float(fields["pymalloc_free_blocks_mb"]) + float(fields["pymalloc_empty_pools_mb"])
    assert 0 < wasted < float(fields["pymalloc_arenas_mb"]) - float(fields["pymalloc_used_mb"])
    assert 0 < float(fields["malloc_used_mb"]) <= float(fields["malloc_os_mb"])


def test_pymalloc_figures_follow_small_objects_kept() -> None:
    before = _pymalloc_figures()
    kept = [(i, i + 1) for i in range(200_000)]  # ~16 MB of small tuples and ints
    after = _pymalloc_figures()
    assert before is not None and after is not None
    assert after[1] - before[1] > 8
    del kept


def test_stats_off_without_the_variable() -> None:
    assert start_stats_from_env({}) is None


def test_the_cache_probe_sees_caches_frozen_by_gc_freeze() -> None:
    """The chain client calls ``gc.freeze()`` after loading metadata: the relay source's
    caches then sit in the permanent generation, where ``gc.get_objects`` does not look
    (every soak's dump line read ``byte_lru_mb=0.0``)."""
    import gc

    cache = ByteLru(1 << 20)
    gc.freeze()
    try:
        before = _byte_lru_bytes()
        cache.put(("block", 1), b"x" * 5000)
        assert _byte_lru_bytes() - before == cache.bytes > 5000
    finally:
        gc.unfreeze()


def test_the_census_counts_instances_with_their_dicts_and_strings() -> None:
    from poolkeeper._memtrace import census

    class Held:
        def __init__(self, n: int) -> None:
            self.name = f"held-{n:06d}" * 4

    class Model:
        def __init__(self, n: int) -> None:
            object.__setattr__(self, "__dict__", {"name": f"model-{n:06d}" * 4})

    def dicts(text: str) -> int:
        return next(
            int(row.split()[2]) for row in text.splitlines() if row.endswith(" builtins.dict")
        )

    before = census(1.0, top=200)
    kept = [Held(n) for n in range(5000)] + [Model(n) for n in range(5000)]
    text = census(3.0, top=200)
    line = next(row for row in text.splitlines() if row.endswith(".Held"))
    size, count = float(line.split()[0]), int(line.split()[2])
    assert count == 5000
    # the object and its 96-character string (the attribute stays in the instance's
    # values: the census does not make a __dict__ by asking for one)
    assert size * 1e6 / count > 48 + 96
    model = next(row for row in text.splitlines() if row.endswith(".Model"))
    # a model whose __dict__ was set: the object, that dict and its string
    assert float(model.split()[0]) * 1e6 / 5000 > 48 + 150 + 96
    assert dicts(text) - dicts(before) < 1000  # the models' dicts went to the models
    assert text.startswith("# census at 3 s: ")
    del kept


class _Keeper:
    def __init__(self) -> None:
        self.kept: list[list[int]] = []


class _Owner:
    __slots__ = ("keeper",)

    def __init__(self, keeper: _Keeper) -> None:
        self.keeper = keeper


def test_holders_count_objects_by_attribute_chain_and_name_the_growth() -> None:
    owner = _Owner(_Keeper())
    _, before = holders(frozenset({"list"}), {})
    for i in range(30):
        owner.keeper.kept.append([i])
    text, after = holders(frozenset({"list"}), before, top=100_000)
    chain = f"list < builtins.list < {__name__}._Keeper.kept < {__name__}._Owner.keeper"
    assert after[chain] == before.get(chain, 0) + 30 == 30, text
    header, *rows = text.splitlines()
    assert header.startswith("# ") and "objects of list by holder" in header
    assert [r.split(None, 2) for r in rows if r.endswith(chain)] == [["30", "+30", chain]], text


def test_holders_pass_over_weak_proxies_whose_object_is_gone() -> None:
    target = _Keeper()
    proxies = [weakref.proxy(target)]
    del target  # the proxy is dead now: touching its attributes raises ReferenceError
    text, counts = holders(frozenset({"ProxyType"}), {})
    assert text.startswith("# ") and sum(counts.values()) >= 1
    assert len(proxies) == 1
