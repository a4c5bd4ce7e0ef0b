"""The block follower: settles every submitted extrinsic from the blocks that follow.

Why: waiting on a per-extrinsic subscription (substrate-interface's way) holds the
connection for each one; instead each new block (best or finalized, as configured) is
fetched once and every waiting extrinsic found in it is settled, so many extrinsics are in
flight on one connection. New blocks are announced by a head subscription on the same
socket (``HeadSignal``), with polling as the fallback. An extrinsic whose mortal era ends
in no block is proven dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from substrateinterface import SubstrateInterface

from poolkeeper._crash_points import crash_point
from poolkeeper.chain._connection import NodeConnection
from poolkeeper.chain._events import scan_block, with_status
from poolkeeper.chain._heads import HeadSignal
from poolkeeper.chain.ports import Outcome, SignedExtrinsic, TxStatus
from poolkeeper.errors import ChainNodeError, ChainUnavailable


@dataclass
class _Waiter:
    signed: SignedExtrinsic
    future: asyncio.Future[Outcome]
    finalized: bool


class InclusionFollower:
    """Waits for submitted extrinsics to be included (or finalized, or dropped)."""

    def __init__(
        self,
        conn: NodeConnection,
        *,
        wait_for_finalization: bool,
        poll_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self._conn = conn
        self._wait_final = wait_for_finalization
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._waiters: dict[str, _Waiter] = {}
        self._follower: asyncio.Task[None] | None = None
        self.heads: HeadSignal | None = None
        self._scanned_to: int | None = None

    async def wait(self, signed: SignedExtrinsic) -> Outcome:
        """The outcome of ``signed``, just submitted (``ChainUnavailable`` after the
        timeout or when the node cannot be followed)."""
        crash_point("after_submit")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(signed, loop.create_future(), self._wait_final)
        self._waiters[signed.extrinsic_hash] = waiter
        self._ensure_follower()
        try:
            return await asyncio.wait_for(waiter.future, self._timeout)
        except TimeoutError as exc:
            raise ChainUnavailable(
                f"no inclusion of {signed.extrinsic_hash} within {self._timeout:.0f}s"
            ) from exc
        finally:
            self._waiters.pop(signed.extrinsic_hash, None)

    async def find(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        """The outcome of an extrinsic in a block from ``since_block`` to the best."""

        def scan(s: SubstrateInterface) -> Outcome | None:
            best = int(s.rpc_request("chain_getHeader", [])["result"]["number"], 16)
            for number in range(since_block, best + 1):
                found = scan_block(s, number, {extrinsic_hash}, {})
                if extrinsic_hash in found:
                    return found[extrinsic_hash]
            return None

        return await self._conn.run(scan)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
        if self.heads is not None:
            await self.heads.close()
            self.heads = None

    def _ensure_follower(self) -> None:
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        if self.heads is None:
            self.heads = HeadSignal(
                self._conn.rpc(), finalized=self._wait_final, poll_seconds=self._poll
            )
        while self._waiters:
            try:
                await self._conn.run(self._follow_once)
            except (ChainUnavailable, ChainNodeError) as exc:
                lost = exc if isinstance(exc, ChainUnavailable) else ChainUnavailable(str(exc))
                for waiter in list(self._waiters.values()):
                    if not waiter.future.done():
                        waiter.future.set_exception(lost)
                return
            await self.heads.wait()

    def _follow_once(self, s: SubstrateInterface) -> None:
        if self._wait_final:
            fin_hash = s.rpc_request("chain_getFinalizedHead", [])["result"]
            top = int(s.rpc_request("chain_getHeader", [fin_hash])["result"]["number"], 16)
        else:
            top = int(s.rpc_request("chain_getHeader", [])["result"]["number"], 16)
        if self._scanned_to is None:
            starts = [w.signed.era_start for w in self._waiters.values() if w.signed.era_start]
            self._scanned_to = (min(starts) - 1) if starts else top - 1
        wanted = set(self._waiters)
        counts = {h: w.signed.call_count for h, w in self._waiters.items()}
        for number in range(self._scanned_to + 1, top + 1):
            for ext_hash, outcome in scan_block(s, number, wanted, counts).items():
                waiter = self._waiters.get(ext_hash)
                if waiter and not waiter.future.done():
                    final = outcome
                    if self._wait_final and outcome.status is TxStatus.IN_BLOCK:
                        final = with_status(outcome, TxStatus.FINALIZED)
                    waiter.future.get_loop().call_soon_threadsafe(_resolve, waiter.future, final)
            self._scanned_to = number
        for waiter in list(self._waiters.values()):
            era = waiter.signed
            expired = (
                era.era_start is not None
                and era.era_period is not None
                and top > era.era_start + era.era_period
            )
            if expired and not waiter.future.done():
                dropped = Outcome(status=TxStatus.DROPPED, error="mortality expired")
                waiter.future.get_loop().call_soon_threadsafe(_resolve, waiter.future, dropped)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)
