"""``poolkeeper import csv``: worker rows become inventory entries; every bad row is
reported as file:line at once and nothing is written."""

from __future__ import annotations

from pathlib import Path

from substrateinterface import Keypair

from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import WorkerState

from .test_prb3 import OWNER, run

OPERATOR = Keypair.create_from_uri("//CsvOperator", ss58_format=30).ss58_address


def test_fresh_inventory_from_pids_with_owner_and_proxy(tmp_path: Path) -> None:
    rows = tmp_path / "fleet.csv"
    rows.write_text(
        "name,endpoint,pool,stake,state\n"
        "# rack a\n"
        "a1,http://10.0.0.1:8000,0,5000 PHA\n"
        "a2,http://10.0.0.2:8000,0,2000000000000000,idle\n"
        "\n"
        "b1,http://10.0.1.1:8000,4,3000 PHA,removed\n"
    )
    into = tmp_path / "inv"
    done = run(
        "import",
        "csv",
        str(rows),
        "--into",
        str(into),
        "--owner",
        OWNER,
        "--operator",
        OPERATOR,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    desired = load_inventory(into)
    assert [(p.name, p.pid, p.owner, p.operator) for p in desired.pools] == [
        ("pool-0", 0, "owner", "operator"),
        ("pool-4", 4, "owner", "operator"),
    ]
    workers = desired.workers_by_name
    assert workers["a2"].stake == 2000 * 10**12 and workers["a2"].state is WorkerState.IDLE
    assert workers["b1"].pool == "pool-4" and workers["b1"].state is WorkerState.REMOVED
    assert desired.accounts_by_name["operator"].key is not None
    assert "export POOLKEEPER_KEY_OPERATOR=" in done.stdout


def test_rows_resolve_against_the_inventory_already_there(tmp_path: Path) -> None:
    into = tmp_path / "inv"
    into.mkdir()
    (into / "base.yaml").write_text(
        "accounts:\n"
        f"  - {{name: own, role: owner, address: {OWNER}}}\n"
        "pools:\n"
        "  - {name: main, pid: 9, owner: own, default_stake: 1000 PHA}\n"
    )
    rows = tmp_path / "fleet.csv"
    rows.write_text("w1,http://10.0.0.1:8000,main,\nw2,http://10.0.0.2:8000,9,2000 PHA\n")
    done = run("import", "csv", str(rows), "--into", str(into), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    desired = load_inventory(into)
    assert {w.name: (w.pool, desired.stake_of(w)) for w in desired.workers} == {
        "w1": ("main", 1000 * 10**12),
        "w2": ("main", 2000 * 10**12),
    }


def test_every_bad_row_is_reported_as_file_and_line(tmp_path: Path) -> None:
    rows = tmp_path / "fleet.csv"
    rows.write_text(
        "ok,http://10.0.0.1:8000,0,5000 PHA\n"
        "bad name,http://10.0.0.2:8000,0,5000 PHA\n"
        "w3,ftp://x,0,5000 PHA\n"
        "w4,http://10.0.0.4:8000,0,5000\n"
        "w5,http://10.0.0.5:8000,0,5000 PHA,running\n"
        "ok,http://10.0.0.1:8000/,0,5000 PHA\n"
        "w7,http://10.0.0.7:8000,0\n"
        "w8,http://10.0.0.8:8000,main,5000 PHA\n"
    )
    into = tmp_path / "inv"
    done = run("import", "csv", str(rows), "--into", str(into), "--owner", OWNER, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{rows}:{n}" for n in (2, 3, 4, 5, 6, 6, 7, 8)
    ], done.stderr
    assert "below the minimum of 1 PHA (a bare number counts plancks" in lines[2]
    assert "duplicate name 'ok': also at line 1" in lines[4]
    assert "duplicate endpoint" in lines[5]
    assert "expected name,endpoint,pool|pid,stake[,state], got 3 fields" in lines[6]
    assert not into.exists()


def test_pids_without_an_owner_ask_for_one(tmp_path: Path) -> None:
    rows = tmp_path / "fleet.csv"
    rows.write_text("a1,http://10.0.0.1:8000,0,5000 PHA\n")
    done = run("import", "csv", str(rows), "--into", str(tmp_path / "i"), cwd=tmp_path)
    assert done.returncode == 1
    assert "--owner ADDRESS" in done.stderr and "Traceback" not in done.stderr
