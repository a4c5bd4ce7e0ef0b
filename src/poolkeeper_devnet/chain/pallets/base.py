"""The contract between the chain engine and the pallets it runs.

The engine (blocks, extrinsics, fees, storage encoding) and the pallets (pure Python
state machines named after the real runtime's pallets) are written separately; this
module is everything each side may assume about the other. Pallets see values in
scalecodec "value shape" (ints, ``"0x.."`` hex strings, dicts, ``{"Variant": value}``)
and never touch SCALE bytes or storage keys: the engine encodes what
``take_storage_changes`` reports with the served metadata's hashers and types.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

AccountHex = str
"""``"0x"`` + 64 lowercase hex digits: an AccountId32 or an sr25519 ``Public`` key."""

StorageChange = tuple[str, tuple[Any, ...], Any | None]
"""(storage item name, key args in value shape, new value in value shape or None = deleted)."""


class DispatchError(Exception):
    """A module error; becomes System.ExtrinsicFailed / Utility.ItemFailed with its real name."""

    def __init__(self, pallet: str, error: str) -> None:
        super().__init__(f"{pallet}.{error}")
        self.pallet = pallet
        self.error = error


class TokenError(DispatchError):
    """``DispatchError::Token(variant)``: a failure of the fungible traits, not a module error.

    The fungible-based pallet_balances (Khala's) reports transfer failures this way, e.g.
    ``TokenError("FundsUnavailable")`` for an overdraft.
    """

    def __init__(self, variant: str) -> None:
        super().__init__("Token", variant)


class BadOrigin(DispatchError):
    """``DispatchError::BadOrigin``: the origin may not make this call (not a module error)."""

    def __init__(self, pallet: str = "System", error: str = "BadOrigin") -> None:
        super().__init__(pallet, error)


@runtime_checkable
class BlockContext(Protocol):
    """What a pallet sees while a block is being built."""

    number: int
    """The number of the block being built."""
    timestamp_ms: int
    """``Timestamp.Now`` of this block, in milliseconds."""

    def emit(self, pallet: str, event: str, *values: Any, **attributes: Any) -> None:
        """Deposit an event into this block's ``System.Events``.

        Named fields go as keyword arguments by field name, in value shape, e.g.
        ``emit("PhalaStakePoolv2", "PoolWorkerAdded", pid=3, worker="0x..", session="0x..")``;
        events whose fields have no names take positional values instead.
        """
        ...

    def pallet(self, name: str) -> Pallet:
        """Another pallet by its metadata name (e.g. ``"Balances"`` from a stake pool)."""
        ...

    def push_worker_message(self, sender: bytes, topic: bytes, payload: bytes) -> None:
        """Append ``Message{Pallet(sender), topic, payload}`` to ``PhalaMq.OutboundMessages``."""
        ...


class Pallet(ABC):
    """One runtime pallet as a plain-Python state machine.

    Keep every piece of mutable state in plain instance attributes: the engine rolls
    back a failed call by ``snapshot()``/``restore()``, which by default deep-copies
    ``__dict__``. Subclasses that define ``__init__`` must call ``super().__init__()``.
    """

    name: ClassVar[str]
    """The pallet's name in the metadata, e.g. ``"PhalaStakePoolv2"``."""

    def __init__(self) -> None:
        self._pending_changes: dict[tuple[str, tuple[Any, ...]], Any | None] = {}

    def genesis(self, config: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Load this pallet's section of the genesis file (may be empty)."""

    @abstractmethod
    def dispatch(
        self, ctx: BlockContext, signer: AccountHex | None, call: str, args: Mapping[str, Any]
    ) -> None:
        """Run ``call`` with ``args`` by metadata argument name; ``signer`` None means Root.

        Raise ``DispatchError`` on failure; the engine then discards every state change
        the call made (in this pallet and in any pallet it reached through ``ctx``).
        """

    def on_initialize(self, ctx: BlockContext) -> None:  # noqa: B027 - optional hook
        """Called at the start of every block, before any extrinsic."""

    def on_finalize(self, ctx: BlockContext) -> None:  # noqa: B027 - optional hook
        """Called at the end of every block, after all extrinsics."""

    def on_worker_message(  # noqa: B027 - optional hook
        self, ctx: BlockContext, sender_pubkey: AccountHex, topic: bytes, payload: bytes
    ) -> None:
        """A verified worker → chain message on a topic this pallet owns (called by PhalaMq)."""

    def record_change(self, item: str, key: tuple[Any, ...], value: Any | None) -> None:
        """Note that storage ``item`` at ``key`` now holds ``value`` (None = deleted)."""
        self._pending_changes[(item, key)] = value

    def take_storage_changes(self) -> Iterable[StorageChange]:
        """Everything changed since the last call (at genesis: all state), then forget it.

        The default drains what ``record_change`` noted; the last value per key wins.
        """
        changes = [(item, key, value) for (item, key), value in self._pending_changes.items()]
        self._pending_changes = {}
        return changes

    def snapshot(self) -> object:
        """An opaque copy of the pallet's state for ``restore``; override if deepcopy is slow."""
        return copy.deepcopy(self.__dict__)

    def restore(self, snapshot: object) -> None:
        """Put back the state captured by ``snapshot``."""
        self.__dict__.clear()
        self.__dict__.update(copy.deepcopy(cast(dict[str, Any], snapshot)))


class BalancesApi(Protocol):
    """The helpers the engine's Balances pallet offers other pallets (via ``balances(ctx)``).

    Amounts are plancks (u128 ints). ``transfer`` fails as Khala's fungible-based
    pallet_balances does, with a ``TokenError`` (``FundsUnavailable``, ``NotExpendable``,
    ``BelowMinimum``, ``Frozen``); ``withdraw`` (the Currency trait) with
    ``DispatchError("Balances", "InsufficientBalance" | "Expendability")``.
    """

    def free(self, account: AccountHex) -> int: ...

    def transfer(self, src: AccountHex, dst: AccountHex, amount: int, keep_alive: bool) -> None: ...

    def withdraw(self, account: AccountHex, amount: int) -> None: ...

    def deposit(self, account: AccountHex, amount: int) -> None: ...


def balances(ctx: BlockContext) -> BalancesApi:
    """The Balances pallet of ``ctx``, typed with its helper methods."""
    return cast(BalancesApi, ctx.pallet("Balances"))


@dataclass
class RecordedEvent:
    """An event captured by ``SimpleBlockContext``."""

    pallet: str
    event: str
    values: tuple[Any, ...]
    attributes: dict[str, Any]


@dataclass
class SimpleBlockContext:
    """A ``BlockContext`` without an engine, for unit tests of pallets.

    It records events and worker messages in lists and looks pallets up in ``pallets``.
    """

    number: int = 1
    timestamp_ms: int = 0
    pallets: dict[str, Pallet] = field(default_factory=dict)
    events: list[RecordedEvent] = field(default_factory=list)
    worker_messages: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)

    def emit(self, pallet: str, event: str, *values: Any, **attributes: Any) -> None:
        self.events.append(RecordedEvent(pallet, event, values, dict(attributes)))

    def pallet(self, name: str) -> Pallet:
        return self.pallets[name]

    def push_worker_message(self, sender: bytes, topic: bytes, payload: bytes) -> None:
        self.worker_messages.append((sender, topic, payload))
