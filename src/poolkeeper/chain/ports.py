"""The chain port: the few things poolkeeper asks of a Substrate node.

The observer, executor and relays depend on these Protocols, never on
substrate-interface; the adapter ``poolkeeper.chain.SubstrateChain`` implements them.
Reads are batched by design: one call returns the state of every pool and worker,
so the number of round trips does not grow with the number of workers beyond paging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    ObservedAccount,
    ObservedPool,
    ProxyGrant,
)
from poolkeeper.model.ss58 import decode_address


class Signer(Protocol):
    """Something that can sign extrinsic payloads; never exposes its secret."""

    @property
    def address(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, payload: bytes) -> bytes: ...


@dataclass(frozen=True)
class CallSpec:
    """A runtime call by metadata names, independent of any SCALE library.

    ``raw_args`` carries already SCALE-encoded arguments (registration, whose
    attestation the 2023 Khala metadata cannot represent); the adapter prefixes the
    pallet and call indices of the metadata it is served.
    """

    pallet: str
    function: str
    args: Mapping[str, Any] = field(default_factory=dict)
    raw_args: bytes | None = None


@dataclass(frozen=True)
class ChainState:
    """Everything the observer needs from the chain, read at one block."""

    head: ChainHead
    cool_down_period: int
    workers: dict[str, ChainWorker]
    pools: dict[int, ObservedPool]
    accounts: dict[str, ObservedAccount]
    proxies: tuple[ProxyGrant, ...]
    round_trips: int = 0
    """How many RPC requests the read took (for the scale targets)."""
    block_time_ms: int | None = None
    """Measured average block time; None when not measured."""
    benchmark_duration: int | None = None
    """``PhalaRegistry.BenchmarkDuration`` in blocks; None when absent."""


class ChainReader(Protocol):
    """Reads chain state in batches."""

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        """State at the best block of the given pools (their workers included), accounts,
        and workers by public key (hex), in a number of requests independent of counts."""
        ...

    async def account_nonce(self, address: str) -> int:
        """Next nonce of an account, counting the transaction pool."""
        ...


class TxStatus(StrEnum):
    """What became of a submitted extrinsic."""

    IN_BLOCK = "in_block"
    FINALIZED = "finalized"
    FAILED = "failed"
    """Included, but dispatch failed as a whole."""
    REJECTED = "rejected"
    """Refused by the node before inclusion (bad nonce, cannot pay fees, ...)."""
    DROPPED = "dropped"
    """Never included: nonce consumed elsewhere or mortality expired."""


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one call inside an extrinsic (a batch item, or the only call)."""

    ok: bool
    error: str | None = None
    """``Pallet.ErrorName`` for module errors, or the dispatch error text."""
    events: tuple[ChainEvent, ...] = ()
    """Events the call emitted (for a batch item: those before its ItemCompleted)."""


@dataclass(frozen=True)
class ChainEvent:
    """A runtime event by metadata names, attributes in substrate-interface's value shape."""

    pallet: str
    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignedExtrinsic:
    """A signed extrinsic, ready to send. Its hash is known before it leaves, so the
    journal can record it first; re-sending the same bytes can never execute twice."""

    extrinsic_hash: str
    data: bytes
    signer: str
    nonce: int
    call_count: int
    era_start: int | None = None
    """First block of the mortal era (None when immortal)."""
    era_period: int | None = None


@dataclass(frozen=True)
class Outcome:
    """The final word on one extrinsic."""

    status: TxStatus
    block_number: int | None = None
    block_hash: str | None = None
    items: tuple[ItemResult, ...] = ()
    fee: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class NonceAt:
    """An account's on-chain nonce read at one block."""

    nonce: int
    block_number: int


class ChainWriter(Protocol):
    """Signs, submits and follows extrinsics."""

    async def sign(
        self,
        signer: Signer,
        calls: Sequence[CallSpec],
        *,
        proxy_for: str | None = None,
        nonce: int | None = None,
    ) -> SignedExtrinsic:
        """Compose ``calls`` into one extrinsic (``Utility.force_batch`` when several,
        wrapped in ``Proxy.proxy`` when ``proxy_for`` is set) and sign it."""
        ...

    async def send(self, signed: SignedExtrinsic) -> Outcome:
        """Submit and watch until inclusion or finality (per configuration).

        A node's refusal is an ``Outcome`` with status REJECTED, not an exception;
        ``ChainUnavailable`` is raised only when the node cannot be reached."""
        ...

    async def estimate_fee(
        self, signer: Signer, calls: Sequence[CallSpec], *, proxy_for: str | None = None
    ) -> int:
        """Fee in plancks the node would charge for this extrinsic."""
        ...

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        """Look for an extrinsic in blocks from ``since_block`` to the best block."""
        ...

    async def chain_nonce(self, address: str) -> NonceAt:
        """The account's nonce in ``System.Account`` at the best block (extrinsics
        included so far; the transaction pool is not counted), with that block."""
        ...

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        """Submit ``signed`` again without waiting: None when the node took it, else its
        refusal text (``already imported`` means the pool holds it)."""
        ...


@dataclass(frozen=True)
class Transfer:
    """One ``Balances.Transfer`` event. Accounts are 32-byte public keys, hex."""

    block: int
    sender: str
    dest: str
    amount: int


@dataclass(frozen=True)
class TransferScan:
    """Transfers found in blocks ``first``..``last`` (inclusive) and the reads it took."""

    transfers: tuple[Transfer, ...]
    first: int
    last: int
    reads: int


def account_hex(address: str) -> str:
    """The public key of an SS58 address (or of a 0x hex key), lower-case hex."""
    if address.startswith("0x"):
        return address[2:].lower()
    return decode_address(address)[1].hex()
