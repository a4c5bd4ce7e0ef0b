"""``poolkeeper list workers|accounts|pools`` against a snapshot: columns, levels, formats."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolkeeper.cli import app
from poolkeeper.cli._lists import ACCOUNT_COLUMNS, POOL_COLUMNS, WORKER_COLUMNS
from poolkeeper.model.observed import (
    ChainHead,
    ChainWorker,
    Observed,
    ObservedAccount,
    ObservedPool,
    ProxyGrant,
    PRuntimeInfo,
    PRuntimeObservation,
    SessionState,
)
from poolkeeper.observe.snapshot import dump_snapshot

PHA = 10**12
REPO = Path(__file__).resolve().parents[3]
OWNER = "42d4RnfhvJWEPz8nkfbfn4HH3emogNgsYHBUqw6SxK22v6K8"
OPERATOR = "416HXvrpawNRE2ubWLsg1vAsMxa1FD2x155rsrpcCeysGZHa"
FUNDING = "468j4X8kEc2FWzBGzWs9DVKy3Ea44oBP3BcdBAtgxinPVBaM"
TREASURY = "447okwgqnpaKuseEXECNcXK8KUMPpgM1cjczMvKx9T7c5MXr"
PUBKEY = "aa" * 32

INVENTORY = f"""\
settings:
  network: devnet
  warn_below: 20 PHA
  critical_below: 5 PHA
pools:
  - name: pool-a
    pid: 7
    owner: owner
    operator: operator-a
    commission: 5%
    default_stake: 1000 PHA
workers:
  - name: w1
    endpoint: http://127.0.0.1:8100
    pool: pool-a
  - name: w2
    endpoint: http://127.0.0.1:8101
    pool: pool-a
    stake: 2000 PHA
accounts:
  - name: owner
    role: owner
    address: {OWNER}
  - name: operator-a
    role: operator
    address: {OPERATOR}
    top_up: {{from: funding, to: 100 PHA, max_per_day: 500 PHA}}
  - name: funding
    role: funding
    derivation: funding
    address: {FUNDING}
    warn_below: 1000 PHA
    critical_below: 200 PHA
  - name: treasury
    role: watch
    address: {TREASURY}
"""


def observed() -> Observed:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Observed(
        read_at=at,
        head=ChainHead(best_number=100, finalized_number=98, timestamp_ms=1_767_225_600_000),
        pruntimes={
            "http://127.0.0.1:8100": PRuntimeObservation(
                endpoint="http://127.0.0.1:8100",
                info=PRuntimeInfo(
                    initialized=True, headernum=120, blocknum=99, public_key=PUBKEY, score=1500
                ),
                read_at=at,
            ),
            "http://127.0.0.1:8101": PRuntimeObservation(
                endpoint="http://127.0.0.1:8101", error="connection refused", read_at=at
            ),
        },
        chain_workers={
            PUBKEY: ChainWorker(
                pubkey=PUBKEY,
                initial_score=1500,
                session="43FvEsbLQzmw4Pyrqv38ZugzNofAW1Rwj9FFD3V6gYBqtigB",
                session_state=SessionState.WORKER_IDLE,
                stake=1000 * PHA,
                pool_pid=7,
            )
        },
        pools={
            7: ObservedPool(
                pid=7,
                owner=OWNER,
                workers=(PUBKEY,),
                free_stake=5000 * PHA,
                cap=None,
                commission=50_000,
            )
        },
        accounts={
            OWNER: ObservedAccount(address=OWNER, free=15 * PHA, nonce=4),
            OPERATOR: ObservedAccount(address=OPERATOR, free=3 * PHA, reserved=PHA, nonce=9),
            FUNDING: ObservedAccount(address=FUNDING, free=10_000 * PHA),
        },
        proxies=(ProxyGrant(real=OWNER, delegate=OPERATOR, proxy_type="StakePoolManager"),),
        topped_up_today={OPERATOR: 50 * PHA},
    )


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "all.yaml").write_text(INVENTORY, encoding="utf-8")
    snapshot = tmp_path / "observed.json"
    snapshot.write_text(dump_snapshot(observed()), encoding="utf-8")
    return inventory, snapshot


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"POOLKEEPER_MNEMONIC": ""})
    return result.exit_code, result.stdout, result.stderr


def listing(kind: str, world: tuple[Path, Path], fmt: str) -> str:
    inventory, snapshot = world
    code, out, err = run("list", kind, str(inventory), "--observed", str(snapshot), "--format", fmt)
    assert code == 0, err
    return out


def test_workers_json_joins_inventory_pruntime_and_chain(world: tuple[Path, Path]) -> None:
    document = json.loads(listing("workers", world, "json"))
    assert document["format_version"] == 1
    assert document["kind"] == "workers"
    assert document["observed"]["best_number"] == 100
    w1, w2 = document["workers"]
    assert list(w1) == list(WORKER_COLUMNS)
    assert (w1["phase"], w1["session_state"]) == ("Computing", "WorkerIdle")
    assert (w1["stake_plancks"], w1["desired_stake_plancks"]) == (1000 * PHA, 1000 * PHA)
    assert (w1["initial_score"], w1["pruntime_headernum"], w1["pruntime_blocknum"]) == (
        1500,
        120,
        99,
    )
    assert (w1["chain_best"], w1["chain_finalized"], w1["pubkey"]) == (100, 98, PUBKEY)
    assert w1["error"] is None
    assert (w2["phase"], w2["error"]) == ("Unreachable", "connection refused")
    assert w2["desired_stake_plancks"] == 2000 * PHA and w2["stake_plancks"] is None


def test_account_levels_follow_the_planners_alerts(world: tuple[Path, Path]) -> None:
    inventory, snapshot = world
    rows = {r["name"]: r for r in json.loads(listing("accounts", world, "json"))["accounts"]}
    assert {n: r["level"] for n, r in rows.items()} == {
        "owner": "warn",
        "operator-a": "critical",
        "funding": "ok",
        "treasury": "critical",
    }
    code, out, _ = run("plan", str(inventory), "--observed", str(snapshot), "--json")
    assert code == 0
    plan = json.loads(out)
    balance_alerts = {
        a["target"].removeprefix("account/"): a["severity"]
        for a in plan["alerts"]
        if "balance" in a["message"] and a["message"].startswith("balance")
    }
    assert balance_alerts == {n: r["level"] for n, r in rows.items() if r["level"] != "ok"}
    op = rows["operator-a"]
    assert (op["free_plancks"], op["reserved_plancks"], op["nonce"]) == (3 * PHA, PHA, 9)
    assert (op["top_up_from"], op["top_up_to_plancks"]) == ("funding", 100 * PHA)
    assert (op["top_up_max_per_day_plancks"], op["topped_up_today_plancks"]) == (
        500 * PHA,
        50 * PHA,
    )
    assert any("critical threshold" in text for text in op["alerts"])
    assert rows["treasury"]["free_plancks"] == 0
    assert rows["funding"]["warn_below_plancks"] == 1000 * PHA


def test_pools_show_chain_side_and_proxy(world: tuple[Path, Path]) -> None:
    (pool,) = json.loads(listing("pools", world, "json"))["pools"]
    assert list(pool) == list(POOL_COLUMNS)
    assert pool["on_chain"] is True and pool["pid"] == 7
    assert (pool["owner"], pool["owner_address"], pool["operator"]) == (
        "owner",
        OWNER,
        "operator-a",
    )
    assert (pool["proxied"], pool["proxy_on_chain"]) == (True, True)
    assert (pool["workers"], pool["cd_workers"], pool["declared_workers"]) == (1, 0, 2)
    assert (pool["free_stake_plancks"], pool["commission_permill"]) == (5000 * PHA, 50_000)


def documented_header(kind: str) -> list[str]:
    text = (REPO / "docs" / "lists.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- csv:{kind} -->\s*```\n(.+?)\n```", text)
    assert match, f"docs/lists.md has no CSV header block for {kind}"
    return match.group(1).split(",")


@pytest.mark.parametrize(
    ("kind", "columns"),
    [("workers", WORKER_COLUMNS), ("accounts", ACCOUNT_COLUMNS), ("pools", POOL_COLUMNS)],
)
def test_csv_header_is_the_documented_one(
    kind: str, columns: tuple[str, ...], world: tuple[Path, Path]
) -> None:
    table = list(csv.reader(io.StringIO(listing(kind, world, "csv"))))
    assert table[0] == documented_header(kind) == list(columns)
    assert all(len(row) == len(columns) for row in table[1:])
    assert len(table) > 1


def test_csv_amounts_are_integer_plancks_and_table_is_human(world: tuple[Path, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(listing("accounts", world, "csv"))))
    operator = next(r for r in rows if r["name"] == "operator-a")
    assert operator["free_plancks"] == str(3 * PHA)
    assert operator["level"] == "critical"
    table = listing("accounts", world, "table")
    assert "3 PHA" in table and "critical" in table
    assert str(3 * PHA) not in table
    assert "operator-a: critical: balance 3 PHA" in table


def test_a_bad_snapshot_and_a_bad_inventory_exit_1(world: tuple[Path, Path]) -> None:
    inventory, snapshot = world
    snapshot.write_text("{}", encoding="utf-8")
    code, _, err = run("list", "workers", str(inventory), "--observed", str(snapshot))
    assert code == 1 and "not a valid observed-state snapshot" in err
    (inventory / "all.yaml").write_text("workers: 3\n", encoding="utf-8")
    code, _, err = run("list", "pools", str(inventory), "--observed", str(snapshot))
    assert code == 1 and "problem" in err


def test_an_account_without_a_written_address_is_derived_in_memory(
    world: tuple[Path, Path],
) -> None:
    inventory, snapshot = world
    text = (inventory / "all.yaml").read_text(encoding="utf-8")
    (inventory / "all.yaml").write_text(
        text.replace(f"    address: {FUNDING}\n", ""), encoding="utf-8"
    )
    args = ["list", "accounts", str(inventory), "--observed", str(snapshot), "--format", "json"]
    phrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
    done = CliRunner().invoke(app, args, env={"POOLKEEPER_MNEMONIC": phrase})
    assert done.exit_code == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)["accounts"]}
    assert (rows["funding"]["address"], rows["funding"]["level"]) == (FUNDING, "ok")
    code, out, err = run(*args)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["accounts"]}
    assert (rows["funding"]["address"], rows["funding"]["level"]) == (None, "unknown")
    assert "derived addresses unknown" in err


@pytest.mark.parametrize("kind", ["workers", "accounts", "pools"])
def test_json_flag_is_format_json(world: tuple[Path, Path], kind: str) -> None:
    inventory, snapshot = world
    base = ["list", kind, str(inventory), "--observed", str(snapshot)]
    code, by_flag, _ = run(*base, "--json")
    assert code == 0
    assert json.loads(by_flag) == json.loads(run(*base, "--format", "json")[1])
    code, _, err = run(*base, "--json", "--format", "csv")
    assert code == 1
    assert "--json and --format csv" in err
