"""Storage versions shared by every simulated pRuntime of one simulator process.

A real pRuntime holds the chain's whole storage, and so did each simulated one: a copy per
worker, so the simulator's memory grew as workers × chain state (past 11 GB seven minutes
into the 10,000-worker scenario, when the product itself held ~500 MB). Yet thousands of
simulated pRuntimes hold the same storage at the same block.

A ``StateVersion`` is immutable. Applying one block's changes to it gives the child version,
memoised by the changes' encoded bytes: every pRuntime that applies the same block on top of
the same storage gets the same child, and the work of decoding the changes and computing the
accumulator (the devnet state root, docs/devnet-wire.md) is done once. Validation is
unchanged: each pRuntime still compares the child's root with the header it synced, so a
relay feeding one pRuntime wrong changes gets the same ``StateRootMismatch`` as before.

A child keeps its parent and only its own changes; after ``FLATTEN_DEPTH`` layers the child
copies the storage into one dictionary and drops its parents, so lookups stay short and a
version no pRuntime holds any more is freed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

import xxhash

from poolkeeper_devnet.pruntime._scale import accumulate, leaf, root_of

FLATTEN_DEPTH = 16
_MOD = 1 << 256

Changes = list[tuple[bytes, bytes | None]]


class StateVersion:
    """One storage, its accumulator and root, and the block changes that led to it."""

    __slots__ = (
        "__weakref__",
        "_base",
        "_children",
        "_depth",
        "_own",
        "_parent",
        "acc",
        "changes",
        "root",
    )

    def __init__(
        self,
        *,
        acc: int,
        base: dict[bytes, bytes] | None = None,
        parent: StateVersion | None = None,
        own: dict[bytes, bytes | None] | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.acc = acc
        self.root = root_of(acc)
        self.changes: Changes = changes or []
        self._base: dict[bytes, bytes] = base if base is not None else {}
        self._parent = parent
        self._own: dict[bytes, bytes | None] = own or {}
        self._depth: int = 0 if parent is None else parent._depth + 1
        self._children: weakref.WeakValueDictionary[bytes, StateVersion] = (
            weakref.WeakValueDictionary()
        )
        if self._depth >= FLATTEN_DEPTH:
            self._flatten()

    @classmethod
    def of_pairs(cls, pairs: Iterable[tuple[bytes, bytes]]) -> StateVersion:
        base = dict(pairs)
        return cls(acc=accumulate(base.items()), base=base)

    def get(self, key: bytes) -> bytes | None:
        version = self
        while version._parent is not None:
            own = version._own
            if key in own:
                return own[key]
            version = version._parent
        return version._base.get(key)

    def items(self) -> list[tuple[bytes, bytes]]:
        """The whole storage (for tests and for proofs; not on the hot path)."""
        merged: dict[bytes, bytes | None] = {}
        chain: list[StateVersion] = []
        version: StateVersion | None = self
        while version is not None:
            chain.append(version)
            version = version._parent
        merged.update(chain[-1]._base)
        for layer in reversed(chain[:-1]):
            merged.update(layer._own)
        return [(k, v) for k, v in merged.items() if v is not None]

    def after(self, raw_changes: bytes, decode: Callable[[bytes], Changes]) -> StateVersion:
        """The version after a block whose SCALE-encoded main-storage changes are
        ``raw_changes``; ``decode`` runs only the first time these bytes meet this version."""
        digest = xxhash.xxh3_128_digest(raw_changes) + len(raw_changes).to_bytes(8, "little")
        child = self._children.get(digest)
        if child is None:
            changes = decode(raw_changes)
            child = self._child(changes)
            self._children[digest] = child
        return child

    def _child(self, changes: Changes) -> StateVersion:
        acc = self.acc
        own: dict[bytes, bytes | None] = {}
        for key, value in changes:
            old = own[key] if key in own else self.get(key)
            if old is not None:
                acc -= leaf(key, old)
            if value is not None:
                acc += leaf(key, value)
            own[key] = value
        return StateVersion(acc=acc % _MOD, parent=self, own=own, changes=changes)

    def _flatten(self) -> None:
        base = dict(self.items())
        self._base = base
        self._own = {}
        self._parent = None
        self._depth = 0


_BASES: weakref.WeakValueDictionary[bytes, StateVersion] = weakref.WeakValueDictionary()


def base_version(
    raw_pairs: bytes, decode: Callable[[bytes], list[tuple[bytes, bytes]]]
) -> StateVersion:
    """The version of a whole encoded storage (a genesis state, a loaded chain state),
    shared by every pRuntime given the same bytes while any of them holds it."""
    digest = xxhash.xxh3_128_digest(raw_pairs) + len(raw_pairs).to_bytes(8, "little")
    version = _BASES.get(digest)
    if version is None:
        version = StateVersion.of_pairs(decode(raw_pairs))
        _BASES[digest] = version
    return version


EMPTY = StateVersion(acc=0)
