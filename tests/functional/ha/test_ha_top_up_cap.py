"""The daily top-up cap holds across a failover: the owner spends the day's cap on an
operator, hands the shard over, and the standby, whose journal is older than the day (so it
would trust its own record, which holds none of the owner's top-ups), counts the day's
transfers on chain and sends nothing more. Transfers are counted by walking the blocks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scalecodec.utils.ss58 import ss58_decode

from poolkeeper.apply.journal import Journal
from tests.functional.apply._world import World
from tests.functional.ha._etcd import EtcdCluster, etcd_binary
from tests.functional.ha.test_ha_failover import Runner, start, wait_until
from tests.functional.ha.test_ha_shards import PHA, transfers

pytestmark = pytest.mark.slow

if etcd_binary() is None:
    pytest.skip(
        "etcd not installed (Debian: apt-get install etcd-server; scripts/setup does it)",
        allow_module_level=True,
    )

ACCOUNTS = """\
accounts:
  - {name: owner, role: owner, derivation: owner}
  - {name: funder, role: funding, derivation: funder}
  - {name: operator-a, role: operator, derivation: operator//pool-a,
     top_up: {from: funder, to: 3000 PHA, max_per_day: 1500 PHA}}
  - {name: operator-b, role: operator, derivation: operator//pool-b}
  - {name: relay-signer, role: relay_signer, derivation: relay}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "world", 4, block_time=0.3, cool_down=3, accounts=ACCOUNTS)
    try:
        yield w
    finally:
        w.close()


def journal_from_two_days_ago(state_dir: Path) -> None:
    """A state dir whose journal was created two days ago (a standby set up long before)."""
    journal = Journal(state_dir / "journal.sqlite")
    journal.close()
    db = sqlite3.connect(state_dir / "journal.sqlite", isolation_level=None)
    try:
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'created_at'", (repr(time.time() - 2 * 86400),)
        )
    finally:
        db.close()


def test_standby_with_an_old_journal_keeps_the_days_top_up_cap(
    world: World, etcd: EtcdCluster
) -> None:
    operator = ss58_decode(world.addresses["operator-a"])

    def sent() -> int:
        return sum(v for d, v in transfers(world) if d.lower().removeprefix("0x") == operator)

    journal_from_two_days_ago(world.root / "b" / "state")
    a = start(world, etcd, "a", "cap")
    b: Runner | None = None
    try:
        # operator-a has 1,000 PHA and wants 3,000: the owner sends the day's cap, 1,500.
        wait_until(lambda: sent() >= 1500 * PHA, 60, "a tops up operator-a", a)
        b = start(world, etcd, "b", "cap")
        wait_until(lambda: b.ha().get("state") == "standby", 30, "b is standby", a, b)
        a.stop()  # hands the shard over (revokes its lease)
        wait_until(lambda: b.ha().get("owner") is True, 30, "b takes over", a, b)
        wait_until(
            lambda: "top-up cap reached" in b.output() or sent() > 1500 * PHA,
            30,
            "b sees the cap (or tops up again)",
            a,
            b,
        )
        time.sleep(4)  # several more passes of b
        assert sent() == 1500 * PHA, sent() / PHA
        print(f"top-ups of operator-a on chain across the failover: {sent() / PHA:g} PHA")
    finally:
        a.stop()
        if b is not None:
            b.stop()
