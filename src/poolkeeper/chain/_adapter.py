"""``SubstrateChain``: the chain ports implemented on a Substrate node.

Why a small composition: the adapter's parts change for different reasons (a new storage
item, a new wrapper call, a new way to learn of blocks), so each lives in its own module
over the one ``NodeConnection`` they share: storage reads (``_storage``), extrinsics
(``_extrinsics``), the block follower (``_follower``) and outcomes from events
(``_events``). This class only wires them and keeps the ports' method names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from poolkeeper.chain._connection import NodeConnection
from poolkeeper.chain._extrinsics import ExtrinsicBuilder
from poolkeeper.chain._follower import InclusionFollower
from poolkeeper.chain._heads import HeadSignal
from poolkeeper.chain._rpc import AsyncRpc
from poolkeeper.chain._storage import StorageReader
from poolkeeper.chain._storage_values import StorageValues
from poolkeeper.chain.ports import (
    CallSpec,
    ChainState,
    NonceAt,
    Outcome,
    SignedExtrinsic,
    Signer,
    TransferScan,
    TxStatus,
)
from poolkeeper.chain.transfers import scan_transfers
from poolkeeper.errors import ChainHistoryUnavailable, ChainNodeError


class SubstrateChain:
    """``ChainReader`` and ``ChainWriter`` over one node socket.

    ``rpc``: the pipelined socket to use (shared with the relays by the caller); by default
    the adapter opens its own, one per event loop."""

    def __init__(
        self,
        url: str,
        *,
        ss58_format: int | None = None,
        wait_for_finalization: bool = False,
        poll_seconds: float = 0.5,
        timeout_seconds: float = 120.0,
        rpc: AsyncRpc | None = None,
    ) -> None:
        self.url = url
        self._conn = NodeConnection(
            url, ss58_format=ss58_format, timeout_seconds=timeout_seconds, rpc=rpc
        )
        self._reader = StorageReader(self._conn)
        self._extrinsics = ExtrinsicBuilder(self._conn)
        self._follower = InclusionFollower(
            self._conn,
            wait_for_finalization=wait_for_finalization,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )

    @property
    def round_trips(self) -> int:
        """JSON-RPC requests made so far (all of them, the codec's included)."""
        return self._conn.round_trips

    @property
    def ss58_format(self) -> int:
        return self._conn.ss58_format

    @property
    def _heads(self) -> HeadSignal | None:
        return self._follower.heads

    @property
    def _values(self) -> StorageValues | None:
        return self._reader._values

    async def close(self) -> None:
        await self._follower.close()
        await self._conn.close()

    # -- reads ------------------------------------------------------------------------

    async def account_nonce(self, address: str) -> int:
        return await self._reader.account_nonce(address)

    async def chain_nonce(self, address: str) -> NonceAt:
        return await self._reader.chain_nonce(address)

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        return await self._reader.read_state(pids, addresses, pubkeys)

    async def read_map(self, pallet: str, item: str, *, page_size: int = 1000) -> dict[Any, Any]:
        """Every entry of a one-key storage map at the best block (see ``StorageReader``)."""
        return await self._reader.read_map(pallet, item, page_size=page_size)

    async def transfers_from(
        self, senders: Sequence[str], *, since_ms: int, after_block: int | None
    ) -> TransferScan:
        """``Balances.Transfer`` events sent by ``senders`` (see ``chain.transfers``)."""
        try:
            return await self._conn.run(
                lambda s: scan_transfers(
                    s, list(senders), since_ms=since_ms, after_block=after_block
                )
            )
        except ChainNodeError as exc:
            raise ChainHistoryUnavailable(str(exc)) from None

    # -- writes -----------------------------------------------------------------------

    async def sign(
        self,
        signer: Signer,
        calls: Sequence[CallSpec],
        *,
        proxy_for: str | None = None,
        nonce: int | None = None,
    ) -> SignedExtrinsic:
        return await self._extrinsics.sign(signer, calls, proxy_for=proxy_for, nonce=nonce)

    async def estimate_fee(
        self, signer: Signer, calls: Sequence[CallSpec], *, proxy_for: str | None = None
    ) -> int:
        return await self._extrinsics.estimate_fee(signer, calls, proxy_for=proxy_for)

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        return await self._extrinsics.resubmit(signed)

    async def send(self, signed: SignedExtrinsic) -> Outcome:
        rejected = await self._extrinsics.resubmit(signed)
        if rejected is not None:
            return Outcome(status=TxStatus.REJECTED, error=rejected)
        return await self._follower.wait(signed)

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        return await self._follower.find(extrinsic_hash, since_block)
