"""Today's top-ups for the planner: journal only once it saw the whole day; otherwise the
larger of journal and chain per destination; the cap taken as used when the chain
cannot tell."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from poolkeeper.apply.journal import Journal
from poolkeeper.apply.top_up_ledger import TopUpLedger
from poolkeeper.chain.ports import Transfer, TransferScan, account_hex
from poolkeeper.errors import ChainHistoryUnavailable
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic, derive_keys
from poolkeeper.model.desired import Desired

PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
PHA = 10**12
KEYS = derive_keys(Mnemonic(PHRASE), ["funding", "op", "other"], 30)
FUNDING, OP, OTHER = (KEYS[k].address for k in ("funding", "op", "other"))


def day_of(moment: float) -> tuple[str, float]:
    """The UTC day of ``moment`` and the Unix time of its 00:00."""
    at = datetime.fromtimestamp(moment, UTC)
    midnight = datetime(at.year, at.month, at.day, tzinfo=UTC)
    return at.strftime("%Y-%m-%d"), midnight.timestamp()


def desired(tmp_path: Path) -> Desired:
    (tmp_path / "inventory.yaml").write_text(
        f"""\
settings: {{network: devnet, chain: {{endpoints: ['ws://127.0.0.1:1']}}}}
accounts:
  - {{name: funding, role: funding, derivation: funding, address: {FUNDING}}}
  - {{name: op, role: operator, address: {OP}, top_up: {{from: funding, to: 100 PHA,
      max_per_day: 150 PHA}}}}
""",
        encoding="utf-8",
    )
    return load_inventory(tmp_path / "inventory.yaml")


class FakeChain:
    def __init__(self, transfers: list[Transfer], head: int = 100) -> None:
        self.transfers = transfers
        self.head = head
        self.calls: list[tuple[list[str], int, int | None]] = []
        self.fail = False

    async def transfers_from(
        self, senders: Sequence[str], *, since_ms: int, after_block: int | None
    ) -> TransferScan:
        self.calls.append((list(senders), since_ms, after_block))
        if self.fail:
            raise ChainHistoryUnavailable("state discarded")
        first = 0 if after_block is None else after_block + 1
        found = tuple(t for t in self.transfers if first <= t.block <= self.head)
        return TransferScan(found, first, self.head, 3)


def sent(block: int, to: str, pha: int, sender: str = FUNDING) -> Transfer:
    return Transfer(block, account_hex(sender), account_hex(to), pha * PHA)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state" / "journal.sqlite")


async def test_a_journal_born_today_is_completed_by_the_chain(
    tmp_path: Path, journal: Journal
) -> None:
    chain = FakeChain([sent(5, OP, 98), sent(9, OTHER, 40), sent(12, OP, 40, sender=OTHER)])
    now = journal.created_at + 1
    day, midnight = day_of(now)
    journal.record_top_up(day, OP, 10 * PHA, "0x1")
    ledger = TopUpLedger(chain, journal, clock=lambda: now)
    # Only transfers from the destination's own funding account count.
    assert await ledger.sent_today(desired(tmp_path)) == {OP: 98 * PHA}
    chain.transfers.append(sent(130, OP, 52))
    chain.head = 140
    assert await ledger.sent_today(desired(tmp_path)) == {OP: 150 * PHA}
    assert [c[2] for c in chain.calls] == [None, 100]  # the second pass scans new blocks only
    assert chain.calls[0] == ([FUNDING], int(midnight * 1000), None)  # since 00:00 UTC


async def test_a_journal_older_than_today_is_trusted_alone(
    tmp_path: Path, journal: Journal
) -> None:
    chain = FakeChain([sent(5, OP, 98)])
    tomorrow = journal.created_at + 86_400
    journal.record_top_up(day_of(tomorrow)[0], OP, 10 * PHA, "0x1")
    ledger = TopUpLedger(chain, journal, clock=lambda: tomorrow)
    assert await ledger.sent_today(desired(tmp_path)) == {OP: 10 * PHA}
    assert chain.calls == []


async def test_a_chain_without_past_state_counts_the_cap_as_used(
    tmp_path: Path, journal: Journal
) -> None:
    chain = FakeChain([])
    chain.fail = True
    notes: list[str] = []
    ledger = TopUpLedger(chain, journal, clock=lambda: journal.created_at, progress=notes.append)
    assert await ledger.sent_today(desired(tmp_path)) == {OP: 150 * PHA}
    assert "top-ups wait for 00:00 UTC" in notes[0]
