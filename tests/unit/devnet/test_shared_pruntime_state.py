"""The pRuntime simulator's storage versions: shared between workers, exact, and freed."""

from __future__ import annotations

import gc
import random
import weakref
from collections.abc import Callable

from poolkeeper_devnet.pruntime._scale import accumulate, enc_bytes, enc_option, enc_vec, root_of
from poolkeeper_devnet.pruntime._shared_state import FLATTEN_DEPTH, StateVersion
from poolkeeper_devnet.pruntime._worker import _decode_changes

Changes = list[tuple[bytes, bytes | None]]


def encoded(changes: Changes) -> bytes:
    return enc_vec(
        enc_bytes(k) + enc_option(None if v is None else enc_bytes(v)) for k, v in changes
    )


def decoder(calls: list[bytes]) -> Callable[[bytes], Changes]:
    """The simulator's decoder, counting its calls."""

    def decode(raw: bytes) -> Changes:
        calls.append(raw)
        return _decode_changes(raw)

    return decode


def random_blocks(count: int, seed: int = 7) -> list[Changes]:
    rng = random.Random(seed)
    keys = [bytes([i]) * 4 for i in range(40)]
    blocks: list[Changes] = []
    for _ in range(count):
        picked = rng.sample(keys, 6)
        blocks.append(
            [(k, None if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 20))) for k in picked]
            + [(picked[0], b"again")]  # a key written twice in one block: the last one counts
        )
    return blocks


BLOCKS = random_blocks(3 * FLATTEN_DEPTH + 5)


def replay(start: StateVersion, blocks: list[Changes], calls: list[bytes]) -> list[StateVersion]:
    versions, version = [], start
    for changes in blocks:
        version = version.after(encoded(changes), decoder(calls))
        versions.append(version)
    return versions


def test_every_version_matches_a_storage_rebuilt_from_scratch_across_flattening() -> None:
    genesis = StateVersion.of_pairs([(b"g", b"1"), (bytes([3]) * 4, b"old")])
    plain: dict[bytes, bytes] = {b"g": b"1", bytes([3]) * 4: b"old"}
    for version, changes in zip(replay(genesis, BLOCKS, []), BLOCKS, strict=True):
        for key, value in changes:
            if value is None:
                plain.pop(key, None)
            else:
                plain[key] = value
        assert dict(version.items()) == plain
        assert version.root == root_of(accumulate(plain.items()))
        assert all(version.get(k) == plain.get(k) for k in [*plain, b"missing", bytes([9]) * 4])


def test_workers_applying_the_same_block_on_the_same_storage_share_one_version() -> None:
    genesis = StateVersion.of_pairs([(b"g", b"1")])
    calls: list[bytes] = []
    first = replay(genesis, BLOCKS, calls)
    decoded = len(calls)
    second = replay(genesis, BLOCKS, calls)
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert len(calls) == decoded == len(BLOCKS)  # the second worker decoded nothing


def test_the_same_changes_on_another_storage_give_another_version() -> None:
    one = StateVersion.of_pairs([(b"g", b"1")])
    other = StateVersion.of_pairs([(b"g", b"2")])
    raw = encoded(BLOCKS[0])
    a, b = one.after(raw, decoder([])), other.after(raw, decoder([]))
    assert a is not b and a.root != b.root and a.get(b"g") == b"1" and b.get(b"g") == b"2"


def test_versions_no_worker_holds_are_freed_once_flattened_past() -> None:
    genesis = StateVersion.of_pairs([(b"g", b"1")])
    versions = replay(genesis, BLOCKS, [])
    early = weakref.ref(versions[1])
    del versions[:-1]
    gc.collect()
    assert early() is None  # only the newest version is held, and it no longer links back
