"""Today's top-ups: the journal's record, and the chain's when the journal is new today.

The daily top-up cap must hold even if the journal was lost and reset (or deleted with
the state dir) during the day; otherwise a restart could send the day's amount again.
The journal records every top-up it sends, so it is complete for any day that started
after it was created. For the day it was created on, the funding accounts' transfers
since 00:00 UTC are read from the chain (``chain.transfers``: bounded bisection, not a
walk of every block), incrementally after the first pass, and the larger of the two
counts per destination is what the planner sees.

If the node cannot tell (it prunes past state), the cap is taken as used up for the
day: no top-up is safer than a doubled one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from poolkeeper.apply.journal import Journal
from poolkeeper.chain.ports import TransferScan, account_hex
from poolkeeper.errors import ChainHistoryUnavailable
from poolkeeper.model.desired import Desired


class TransferSource(Protocol):
    """What the ledger needs from the chain (``SubstrateChain`` has it)."""

    async def transfers_from(
        self, senders: Sequence[str], *, since_ms: int, after_block: int | None
    ) -> TransferScan: ...


class TopUpLedger:
    """Plancks sent today by top-ups, by destination address, for the planner."""

    def __init__(
        self,
        chain: TransferSource,
        journal: Journal,
        *,
        clock: Callable[[], float] = time.time,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._chain = chain
        self._journal = journal
        self._clock = clock
        self._progress = progress
        self._day: str | None = None
        self._scanned_to: int | None = None
        self._sent: dict[tuple[str, str], int] = {}
        self._senders: frozenset[str] = frozenset()
        self.last_scan: TransferScan | None = None
        """The last chain scan (tests and benchmarks read its ``reads``)."""

    async def sent_today(self, desired: Desired) -> dict[str, int]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        day = now.strftime("%Y-%m-%d")
        recorded = self._journal.topped_up_on(day)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp()
        if self._journal.created_at < midnight:
            return recorded  # the journal saw the whole day
        policies = {
            a.address: (a.top_up, desired.accounts_by_name.get(a.top_up.from_account))
            for a in desired.accounts
            if a.top_up is not None and a.address
        }
        funding = sorted({f.address for _, f in policies.values() if f is not None and f.address})
        if not funding:
            return recorded
        if day != self._day or not self._senders.issuperset(funding):
            self._day, self._scanned_to, self._sent = day, None, {}
            self._senders = frozenset(funding)
        try:
            scan = await self._chain.transfers_from(
                sorted(self._senders), since_ms=int(midnight * 1000), after_block=self._scanned_to
            )
        except ChainHistoryUnavailable as error:
            if self._progress:
                self._progress(
                    f"the journal is new today and the chain cannot show today's transfers "
                    f"({error}): top-ups wait for 00:00 UTC"
                )
            return {dest: policy.max_per_day for dest, (policy, _) in policies.items() if dest}
        self.last_scan = scan
        self._scanned_to = scan.last
        for t in scan.transfers:
            self._sent[(t.sender, t.dest)] = self._sent.get((t.sender, t.dest), 0) + t.amount
        merged = dict(recorded)
        for dest, (_, source) in policies.items():
            if not dest or source is None or not source.address:
                continue
            on_chain = self._sent.get((account_hex(source.address), account_hex(dest)), 0)
            merged[dest] = max(merged.get(dest, 0), on_chain)
        return merged
