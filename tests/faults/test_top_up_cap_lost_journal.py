"""The daily top-up cap holds when the journal is lost: reset, or the state dir deleted.

On the devnet: a pass tops an account up to its daily cap (journaled); the account then
spends, so it is below its ``to`` again. The journal is reset with the CLI
(``journal reset --yes``), or the whole state dir is deleted; a fresh ``plan`` the same
day must plan no second top-up, because the funding account's transfers since 00:00
UTC are read from the chain. Judged by the plan and by the chain's balances.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.apply.executor import Job
from poolkeeper.chain import SubstrateChain
from poolkeeper.chain.ports import CallSpec
from poolkeeper.keys import Mnemonic
from poolkeeper.plan import PlanPolicy
from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.accounts.test_top_ups_on_devnet import (
    ADDR,
    ALICE,
    GENESIS,
    PHA,
    PHRASE,
    desired_for,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start(GENESIS)
    try:
        yield handle
    finally:
        handle.stop()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POOLKEEPER_MNEMONIC": PHRASE, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "poolkeeper", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def planned_top_ups(inventory: Path) -> tuple[dict[str, int], list[str]]:
    done = cli("plan", str(inventory), "--json")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    tops = {a["target"]: a["amount"] for a in document["actions"] if a["kind"] == "top_up"}
    alerts = [a["message"] for a in document["alerts"] if a["target"] == "account/operator-a"]
    return tops, alerts


async def top_up_to_the_cap_then_spend(devnet: DevnetChain, tmp_path: Path) -> None:
    """Two top-ups (98 + 52 PHA = the 150 PHA cap), the operator spending in between and
    after, so it is below its ``to`` (100 PHA) when the journal is lost."""
    rec = build_reconciler(
        desired_for(tmp_path, devnet, None), mnemonic=Mnemonic(PHRASE), state_dir=tmp_path / "state"
    )
    try:
        for pha in (90, 50):
            result = await rec.reconcile_once(PlanPolicy())
            assert all(r.ok for r in result.results), result.results
            spend = CallSpec(
                "Balances", "transfer_keep_alive", {"dest": {"Id": ALICE}, "value": pha * PHA}
            )
            (spent,) = await rec.executor.execute_jobs([Job("spend", spend, "operator-a")])
            assert spent.ok, spent.error
        assert rec.journal.topped_up_on(_today())[ADDR["operator//pool-a"]] == 150 * PHA
    finally:
        await rec.close()


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def funding_free(devnet: DevnetChain) -> int:
    chain = SubstrateChain(devnet.url)
    try:
        state = await chain.read_state((), (ADDR["funding"],))
        return state.accounts[ADDR["funding"]].free
    finally:
        await chain.close()


async def test_journal_reset_the_same_day_plans_no_second_top_up(
    devnet: DevnetChain, tmp_path: Path
) -> None:
    await top_up_to_the_cap_then_spend(devnet, tmp_path)
    inventory = tmp_path / "inventory"
    tops, alerts = planned_top_ups(inventory)
    assert "account/operator-a" not in tops
    assert any("top-up cap reached: 150 PHA of 150 PHA" in a for a in alerts), alerts
    reset = cli("journal", "reset", str(inventory), "--yes")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "top-up history" in reset.stdout
    assert not (tmp_path / "state" / "journal.sqlite").exists() or any(
        p.name.startswith("journal.sqlite.damaged-") for p in (tmp_path / "state").iterdir()
    )
    tops, alerts = planned_top_ups(inventory)
    assert "account/operator-a" not in tops, tops
    assert any("top-up cap reached: 150 PHA of 150 PHA" in a for a in alerts), alerts
    # And an executing pass (a new process) sends nothing either.
    before = await funding_free(devnet)
    rec = build_reconciler(
        desired_for(tmp_path, devnet, None), mnemonic=Mnemonic(PHRASE), state_dir=tmp_path / "state"
    )
    try:
        result = await rec.reconcile_once(PlanPolicy())
        assert not [r for r in result.results if r.action_id.startswith("top_up")], result.results
        assert result.observed.topped_up_today[ADDR["operator//pool-a"]] == 150 * PHA
        scan = rec.top_ups.last_scan
        assert scan is not None
        print(f"chain scan: blocks {scan.first}..{scan.last}, {scan.reads} reads")
        assert scan.reads < 200, scan
    finally:
        await rec.close()
    assert await funding_free(devnet) == before


async def test_state_dir_deleted_the_same_day_plans_no_second_top_up(
    devnet: DevnetChain, tmp_path: Path
) -> None:
    await top_up_to_the_cap_then_spend(devnet, tmp_path)
    shutil.rmtree(tmp_path / "state")
    tops, alerts = planned_top_ups(tmp_path / "inventory")
    assert "account/operator-a" not in tops, tops
    assert any("top-up cap reached: 150 PHA of 150 PHA" in a for a in alerts), alerts
