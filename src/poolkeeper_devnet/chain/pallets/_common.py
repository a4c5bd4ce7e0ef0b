"""What every Phala pallet of the devnet shares: call routing and cheap rollback snapshots.

Rollback: the engine snapshots a pallet before each call and restores it if the call
fails. The default deep copy would copy every worker, session and pool on every
extrinsic (10,000 workers make that slow), so these pallets follow one rule instead:
a stored value (dict, list, tuple) is never mutated in place, only replaced. A snapshot
is then a shallow copy of each top-level container, and storage changes can hand out
the stored objects themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from poolkeeper_devnet.chain.pallets._values import CallNotSupported
from poolkeeper_devnet.chain.pallets.base import AccountHex, BlockContext, Pallet, StorageChange

CallHandler = Callable[[BlockContext, AccountHex | None, Mapping[str, Any]], None]


def _hashable(value: Any) -> Any:
    """A hashable stand-in for a storage key in value shape (enum keys are dicts)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _shallow(value: Any) -> Any:
    if isinstance(value, dict | list | set):
        return value.copy()
    return value


class PhalaPallet(Pallet):
    """A pallet whose calls are methods named ``call_<metadata call name>``."""

    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        handler = getattr(self, f"call_{call}", None)
        if handler is None:
            raise CallNotSupported(self.name, call)
        cast(CallHandler, handler)(ctx, signer, args)

    def record_change(self, item: str, key: tuple[Any, ...], value: Any | None) -> None:
        """As ``Pallet.record_change``, also for keys that are not hashable (enum values)."""
        marker: tuple[str, Any] = (item, key)
        try:
            hash(key)
        except TypeError:  # an enum key in value shape, e.g. {"Worker": "0x.."}
            marker = (item, _hashable(key))
        self._pending_changes[marker] = (key, value)

    def take_storage_changes(self) -> Iterable[StorageChange]:
        pending = cast(dict[tuple[str, Any], tuple[tuple[Any, ...], Any]], self._pending_changes)
        changes = [(item, key, value) for (item, _), (key, value) in pending.items()]
        self._pending_changes = {}
        return changes

    def snapshot(self) -> object:
        return {name: _shallow(value) for name, value in self.__dict__.items()}

    def restore(self, snapshot: object) -> None:
        saved = cast(dict[str, Any], snapshot)
        self.__dict__.clear()
        self.__dict__.update({name: _shallow(value) for name, value in saved.items()})
