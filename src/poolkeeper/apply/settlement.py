"""The one rule that decides what became of a journaled extrinsic whose outcome is unknown.

A crash, a lost connection or a node restart can leave an extrinsic journaled as
PREPARED: it may be in a block, in a node's pool, or gone. Treating a pooled extrinsic as
gone plans its actions again and sends them twice (money lost); treating a gone one as
pooled leaves its actions undone forever. So ``apply``, ``run`` and start-up recovery all
decide by this one rule, and an extrinsic is called dropped only when that is proven:

- **included**: it is in a block from its era start to the best block → settled as found;
- **dropped**: none of those blocks holds it, and either its mortal era has ended
  (the best block is past ``era_start + era_period``: no later block may include it), or
  the account's nonce *on chain* (``System.Account`` at the best block, never
  ``system_accountNextIndex``, which counts the pool) has passed its nonce;
- **pending** otherwise: its actions are not planned again, and the same bytes are
  re-submitted (a pool that lost it in a restart takes it back; "already imported",
  "temporarily banned" or a priority refusal mean the pool holds it).

The nonce is read before the blocks are scanned, so the scan covers the block the nonce
was read at: a nonce that moved past it because of this very extrinsic is found, not
mistaken for another extrinsic's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from poolkeeper.apply.journal import JournalEntry
from poolkeeper.chain.ports import NonceAt, Outcome, SignedExtrinsic, TxStatus

POOL_HOLDS_IT = ("already imported", "temporarily banned", "priority is too low")
"""Refusals of a re-submission meaning the node already has (or just had) these bytes."""


class Verdict(StrEnum):
    """What the rule concluded about one unsettled extrinsic."""

    INCLUDED = "included"
    DROPPED = "dropped"
    PENDING = "pending"


@dataclass(frozen=True)
class Resolution:
    """The verdict, the outcome to record (included or dropped), and why."""

    verdict: Verdict
    outcome: Outcome | None
    reason: str


class SettlementChain(Protocol):
    """What the rule asks of the chain (a part of ``ChainWriter``)."""

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None: ...

    async def chain_nonce(self, address: str) -> NonceAt: ...

    async def resubmit(self, signed: SignedExtrinsic) -> str | None: ...


def signed_of(entry: JournalEntry) -> SignedExtrinsic:
    """The journaled bytes as a ``SignedExtrinsic`` (to send them again unchanged)."""
    return SignedExtrinsic(
        extrinsic_hash=entry.extrinsic_hash,
        data=entry.data,
        signer=entry.signer,
        nonce=entry.nonce,
        call_count=len(entry.action_ids),
        era_start=entry.era_start,
        era_period=entry.era_period,
    )


def era_end(entry: JournalEntry) -> int | None:
    """The first block that can no longer include the extrinsic (None: immortal)."""
    if entry.era_start is None or entry.era_period is None:
        return None
    return entry.era_start + entry.era_period


async def resolve_unsettled(
    entry: JournalEntry, chain: SettlementChain, *, resend: bool = True
) -> Resolution:
    """Apply the rule to one journaled extrinsic (see the module docstring).

    ``resend`` re-submits a pending extrinsic's journaled bytes; ``TemporaryError`` from
    the chain propagates (nothing is decided while the node cannot be asked)."""
    since = entry.era_start if entry.era_start is not None else 0
    on_chain = await chain.chain_nonce(entry.signer)
    found = await chain.find_extrinsic(entry.extrinsic_hash, since)
    if found is not None:
        return Resolution(Verdict.INCLUDED, found, f"found in block #{found.block_number}")
    scanned = f"in none of blocks #{since}..#{on_chain.block_number}"
    if on_chain.nonce > entry.nonce:
        reason = (
            f"nonce {entry.nonce} was used by another extrinsic (account nonce "
            f"{on_chain.nonce} at #{on_chain.block_number}); this one is {scanned}"
        )
        return Resolution(Verdict.DROPPED, Outcome(TxStatus.DROPPED, error=reason), reason)
    end = era_end(entry)
    if end is not None and on_chain.block_number > end:
        reason = f"mortal era ended at #{end} and the extrinsic is {scanned}"
        return Resolution(Verdict.DROPPED, Outcome(TxStatus.DROPPED, error=reason), reason)
    reason = "can still be included" + (f" (era ends at #{end})" if end is not None else "")
    if resend:
        refusal = await chain.resubmit(signed_of(entry))
        if refusal is None:
            reason += "; re-submitted to the pool"
        elif any(text in refusal.lower() for text in POOL_HOLDS_IT):
            reason += "; the pool holds it"
        else:
            reason += f"; re-submission refused for now ({refusal})"
    return Resolution(Verdict.PENDING, None, reason)
