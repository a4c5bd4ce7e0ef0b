"""The chain's main storage: raw key → value bytes, with history and the devnet state root.

Reads at the head are dict lookups; paged key listings use a sorted key index; reads at
an older block undo the per-block changes kept for the last ``HISTORY_BLOCKS`` blocks.
The state root is the multiset hash of docs/devnet-wire.md, maintained incrementally.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from poolkeeper_devnet.codec import blake2_256, encode_bytes

HISTORY_BLOCKS = 4096
"""How many recent blocks' undo logs are kept: older states cannot be read."""

_MODULUS = 1 << 256
_ROOT_TAG = b"poolkeeper-devnet-state-v1"
PROOF_REST_TAG = b"poolkeeper-devnet-proof-rest-v1:"
"""Starts the last item of a read proof: the accumulator of every pair not proved."""


def leaf(key: bytes, value: bytes) -> int:
    return int.from_bytes(blake2_256(encode_bytes(key) + encode_bytes(value)), "little")


def state_root_of(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The devnet state root of a whole storage (docs/devnet-wire.md)."""
    acc = sum(leaf(k, v) for k, v in pairs) % _MODULUS
    return root_from_accumulator(acc)


def root_from_accumulator(acc: int) -> bytes:
    return blake2_256(_ROOT_TAG + acc.to_bytes(32, "little"))


class StateTooOld(LookupError):
    """The requested block's state is no longer kept."""


class Storage:
    """Raw storage at the head, plus undo logs per block number."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] = []
        self._acc = 0
        self.head = 0
        self._undo: dict[int, dict[bytes, bytes | None]] = {}
        self._accs: dict[int, int] = {}

    def accumulator(self, number: int | None = None) -> int:
        """The multiset accumulator of the state at block ``number`` (read proofs need it)."""
        if number is None or number == self.head:
            return self._acc
        self._check_kept(number)
        acc = self._accs.get(number)
        if acc is None:
            raise StateTooOld(f"state of block {number} is pruned")
        return acc

    def root(self) -> bytes:
        return root_from_accumulator(self._acc)

    def apply(self, number: int, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply block ``number``'s changes (each key at most once) to the head state."""
        undo: dict[bytes, bytes | None] = {}
        acc = self._acc
        bulk = len(changes) > 1000
        added: list[bytes] = []
        for key, value in changes.items():
            old = self.data.get(key)
            if old == value:
                continue
            undo[key] = old
            if old is not None:
                acc -= leaf(key, old)
            if value is None:
                del self.data[key]
                index = bisect.bisect_left(self._sorted, key)
                del self._sorted[index]
            else:
                if old is None:
                    if bulk:
                        added.append(key)
                    else:
                        bisect.insort(self._sorted, key)
                self.data[key] = value
                acc += leaf(key, value)
        if added:
            self._sorted.extend(added)
            self._sorted.sort()
        self._acc = acc % _MODULUS
        self.head = number
        self._undo[number] = undo
        self._undo.pop(number - HISTORY_BLOCKS, None)
        self._accs[number] = self._acc
        self._accs.pop(number - HISTORY_BLOCKS, None)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def _check_kept(self, number: int) -> None:
        if number > self.head:
            raise StateTooOld(f"block {number} is not known")
        if number < self.head and (self.head - number) >= HISTORY_BLOCKS:
            raise StateTooOld(f"state of block {number} is pruned")
        for n in range(number + 1, self.head + 1):
            if n not in self._undo:
                raise StateTooOld(f"state of block {number} is pruned")

    def get(self, key: bytes, number: int | None = None) -> bytes | None:
        if number is None or number == self.head:
            return self.data.get(key)
        self._check_kept(number)
        value = self.data.get(key)
        for n in range(self.head, number, -1):
            undo = self._undo[n]
            if key in undo:
                value = undo[key]
        return value

    def keys(self, prefix: bytes, number: int | None = None) -> list[bytes]:
        """Every key starting with ``prefix`` at block ``number``, sorted."""
        start = bisect.bisect_left(self._sorted, prefix)
        current: list[bytes] = []
        for index in range(start, len(self._sorted)):
            key = self._sorted[index]
            if not key.startswith(prefix):
                break
            current.append(key)
        if number is None or number == self.head:
            return current
        self._check_kept(number)
        touched = {
            key
            for n in range(number + 1, self.head + 1)
            for key in self._undo[n]
            if key.startswith(prefix)
        }
        result = [key for key in current if key not in touched]
        result.extend(key for key in touched if self.get(key, number) is not None)
        result.sort()
        return result

    def keys_paged(
        self, prefix: bytes, count: int, start_key: bytes | None, number: int | None = None
    ) -> list[bytes]:
        if number is None or number == self.head:
            begin = prefix if start_key is None or start_key < prefix else start_key
            index = bisect.bisect_left(self._sorted, begin)
            if (
                start_key is not None
                and index < len(self._sorted)
                and self._sorted[index] == start_key
            ):
                index += 1
            result: list[bytes] = []
            while index < len(self._sorted) and len(result) < count:
                key = self._sorted[index]
                if not key.startswith(prefix):
                    break
                result.append(key)
                index += 1
            return result
        keys = self.keys(prefix, number)
        if start_key is not None:
            keys = keys[bisect.bisect_right(keys, start_key) :]
        return keys[:count]

    def pairs(self, prefix: bytes, number: int | None = None) -> list[tuple[bytes, bytes]]:
        result = []
        for key in self.keys(prefix, number):
            value = self.get(key, number)
            if value is not None:
                result.append((key, value))
        return result
