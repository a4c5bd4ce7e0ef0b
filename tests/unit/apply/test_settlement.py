"""The one rule for unsettled journaled extrinsics: dropped only when proven.

A fake chain port records what the rule asks, so the order of the questions (nonce
first, then the blocks) and what it never asks (``system_accountNextIndex``, which
counts the pool) are checked too. The real proof runs on the devnet (tests/faults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from poolkeeper.apply.executor import Executor
from poolkeeper.apply.journal import Journal, JournalEntry, JournalStatus
from poolkeeper.apply.settlement import Verdict, resolve_unsettled
from poolkeeper.chain.ports import NonceAt, Outcome, SignedExtrinsic, TxStatus
from poolkeeper.model.actions import Action, ActionKind
from tests.unit.apply.fake_chain import FakeChain, FakeSigners


@dataclass
class RuleChain:
    """Answers the three questions of the rule; logs them."""

    nonce: int = 0
    best: int = 110
    included: dict[str, Outcome] = field(default_factory=dict)
    refusal: str | None = None
    asked: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)

    async def find_extrinsic(self, extrinsic_hash: str, since_block: int) -> Outcome | None:
        self.asked.append(f"find since {since_block}")
        return self.included.get(extrinsic_hash)

    async def chain_nonce(self, address: str) -> NonceAt:
        self.asked.append("nonce")
        return NonceAt(self.nonce, self.best)

    async def resubmit(self, signed: SignedExtrinsic) -> str | None:
        self.resent.append(signed.extrinsic_hash)
        return self.refusal


def entry(nonce: int = 5, era_start: int | None = 100, period: int | None = 64) -> JournalEntry:
    return JournalEntry(
        id=1,
        extrinsic_hash="0xabc",
        signer="addr-op",
        nonce=nonce,
        data=b"bytes",
        era_start=era_start,
        era_period=period,
        action_ids=("add_worker:worker/w0",),
        status=JournalStatus.PREPARED,
        block_number=None,
        error=None,
    )


async def test_found_in_a_block_since_the_era_start_is_included() -> None:
    found = Outcome(TxStatus.IN_BLOCK, block_number=103, block_hash="0x01")
    chain = RuleChain(nonce=6, included={"0xabc": found})
    resolution = await resolve_unsettled(entry(), chain)
    assert resolution.verdict is Verdict.INCLUDED and resolution.outcome == found
    # The nonce is read first, so the scan covers the block it was read at.
    assert chain.asked == ["nonce", "find since 100"]
    assert chain.resent == []


async def test_on_chain_nonce_past_it_and_in_no_block_is_dropped() -> None:
    chain = RuleChain(nonce=6)
    resolution = await resolve_unsettled(entry(nonce=5), chain)
    assert resolution.verdict is Verdict.DROPPED
    assert "nonce 5 was used by another extrinsic" in resolution.reason
    assert "#100..#110" in resolution.reason
    assert chain.resent == []


async def test_era_ended_without_inclusion_is_dropped() -> None:
    chain = RuleChain(nonce=5, best=165)
    resolution = await resolve_unsettled(entry(), chain)
    assert resolution.verdict is Verdict.DROPPED
    assert "mortal era ended at #164" in resolution.reason


@pytest.mark.parametrize("best", [110, 163, 164])
async def test_alive_era_and_unused_nonce_is_pending_and_re_submitted(best: int) -> None:
    chain = RuleChain(nonce=5, best=best)
    resolution = await resolve_unsettled(entry(), chain)
    assert resolution.verdict is Verdict.PENDING and resolution.outcome is None
    assert chain.resent == ["0xabc"]
    assert "re-submitted" in resolution.reason


@pytest.mark.parametrize(
    "refusal",
    [
        "1013: Transaction Already Imported",
        "1012: Transaction is temporarily banned",
        "1014: Priority is too low: (0 vs 0)",
    ],
)
async def test_a_pool_that_holds_it_keeps_it_pending(refusal: str) -> None:
    resolution = await resolve_unsettled(entry(), RuleChain(nonce=5, refusal=refusal))
    assert resolution.verdict is Verdict.PENDING
    assert "the pool holds it" in resolution.reason


async def test_any_other_refusal_decides_nothing() -> None:
    chain = RuleChain(nonce=5, refusal="1010: Inability to pay some fees")
    resolution = await resolve_unsettled(entry(), chain)
    assert resolution.verdict is Verdict.PENDING
    assert "refused for now" in resolution.reason


async def test_immortal_extrinsic_is_pending_until_its_nonce_passes() -> None:
    pending = await resolve_unsettled(entry(era_start=None, period=None), RuleChain(nonce=5))
    assert pending.verdict is Verdict.PENDING
    dropped = await resolve_unsettled(entry(era_start=None, period=None), RuleChain(nonce=9))
    assert dropped.verdict is Verdict.DROPPED


async def test_without_resend_nothing_is_submitted() -> None:
    chain = RuleChain(nonce=5)
    resolution = await resolve_unsettled(entry(), chain, resend=False)
    assert resolution.verdict is Verdict.PENDING and chain.resent == []


def add_worker(i: int) -> Action:
    return Action(
        id=f"add_worker:worker/w{i}",
        kind=ActionKind.ADD_WORKER,
        target=f"worker/w{i}",
        reason="scored and not in pool",
        pid=1,
        pubkey=f"{i:064x}",
        signer="op",
    )


async def test_a_fresh_extrinsic_never_reuses_the_nonce_of_a_pending_one(tmp_path: Path) -> None:
    # A node restart emptied the pool: system_accountNextIndex says 4 again, but the
    # journal still has nonce 4 pending (its era alive). A new extrinsic takes 5.
    journal = Journal(tmp_path / "journal.sqlite")
    chain = FakeChain(balances={"addr-op": 10**6}, nonces={"addr-op": 4})
    journal.record_prepared(
        extrinsic_hash="0xpending",
        signer="addr-op",
        nonce=4,
        data=b"{}",
        action_ids=["add_worker:worker/w9"],
        era_start=chain.block,
        era_period=64,
    )
    executor = Executor(chain, chain, journal, FakeSigners())
    await executor.execute([add_worker(0)])
    fresh = [e for e in journal.entries() if e.extrinsic_hash != "0xpending"]
    assert [e.nonce for e in fresh] == [5]
    assert journal.pending_action_ids() == {"add_worker:worker/w9"}
