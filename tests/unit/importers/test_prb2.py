"""``poolkeeper import prb2``: PRB v2's local.db (SQLite, sequelize's tables ``pools`` and
``workers``) becomes an inventory that validates, through the real CLI in a subprocess;
the operator keys PRB v2 kept (encrypted) in the database are never read nor shown."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from substrateinterface import Keypair

from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import WorkerState

SRC = Path(__file__).resolve().parents[3] / "src"
PHA = 10**12
OWNER = Keypair.create_from_uri("//PrbV2Owner", ss58_format=30).ss58_address
OPERATOR = Keypair.create_from_uri("//PrbV2Operator", ss58_format=30).ss58_address
SOLO_SURI = "//PrbV2SoloOwner"
SOLO = Keypair.create_from_uri(SOLO_SURI, ss58_format=30).ss58_address
SECRET = b"PRB-V2-ENCRYPTED-OPERATOR legal winner thank year wave sausage worth useful"
STAMP = "2022-03-01 10:00:00.000 +00:00"

# The tables as sequelize (sqlite dialect) creates them for PRB v2's models.
POOLS = """CREATE TABLE `pools` (`id` UUID PRIMARY KEY, `pid` INTEGER NOT NULL UNIQUE,
 `name` VARCHAR(255) NOT NULL UNIQUE, `proxiedAccountSs58` VARCHAR(255),
 `encryptedOperator` BLOB NOT NULL, `enabled` TINYINT(1) DEFAULT 1,
 `syncOnly` TINYINT(1) DEFAULT 0, `createdAt` DATETIME NOT NULL,
 `updatedAt` DATETIME NOT NULL)"""
WORKERS = """CREATE TABLE `workers` (`id` UUID PRIMARY KEY, `name` VARCHAR(255) NOT NULL UNIQUE,
 `endpoint` VARCHAR(255) NOT NULL, `stake` VARCHAR(255) NOT NULL,
 `enabled` TINYINT(1) DEFAULT 1, `syncOnly` TINYINT(1) DEFAULT 0,
 `poolId` UUID REFERENCES `pools` (`id`) ON DELETE SET NULL ON UPDATE CASCADE,
 `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL)"""
# Early releases: workers linked by pid, no syncOnly columns.
POOLS_EARLY = POOLS.replace(",\n `syncOnly` TINYINT(1) DEFAULT 0", "")
WORKERS_EARLY = """CREATE TABLE `workers` (`id` UUID PRIMARY KEY, `pid` INTEGER NOT NULL,
 `name` TEXT NOT NULL UNIQUE, `endpoint` VARCHAR(255) NOT NULL, `stake` VARCHAR(255) NOT NULL,
 `enabled` TINYINT(1) NOT NULL DEFAULT 0, `createdAt` DATETIME NOT NULL,
 `updatedAt` DATETIME NOT NULL)"""


def build_local_db(path: Path) -> None:
    """Two pools (one operated through a proxy of OWNER), five workers."""
    with sqlite3.connect(path) as db:
        db.execute(POOLS)
        db.execute(WORKERS)
        pools = [
            ("uuid-p3", 3, "Main pool", OWNER, 1, 0),
            ("uuid-p7", 7, "solo", None, 1, 0),
        ]
        for row_id, pid, name, proxied, enabled, sync_only in pools:
            db.execute(
                "INSERT INTO pools VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row_id, pid, name, proxied, SECRET, enabled, sync_only, STAMP, STAMP),
            )
        workers = [
            ("w1", "http://10.0.0.1:8000", 5000 * PHA, 1, 0, "uuid-p3"),
            ("rack/w2", "http://10.0.0.2:8000", 2500 * PHA, 1, 0, "uuid-p3"),
            ("w3", "http://10.0.0.3:8000", 0, 1, 1, "uuid-p3"),
            ("w4", "http://10.0.0.4:8000", 1000 * PHA, 0, 0, "uuid-p3"),
            ("w5", "http://10.0.0.5:8000", 3000 * PHA, 1, 0, "uuid-p7"),
        ]
        for n, (name, endpoint, stake, enabled, sync_only, pool) in enumerate(workers):
            db.execute(
                "INSERT INTO workers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f"uuid-w{n}", name, endpoint, str(stake), enabled, sync_only, pool, STAMP, STAMP),
            )


def run(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1", **extra}
    env.pop("POOLKEEPER_MNEMONIC", None)
    return subprocess.run(
        [sys.executable, "-m", "poolkeeper", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_local_db_imports_to_a_valid_inventory(tmp_path: Path) -> None:
    """Pool 3's operator address is given on the command line; pool 7's comes from the
    key already exported where poolkeeper will read it (never written nor shown)."""
    build_local_db(tmp_path / "local.db")
    done = run(
        "import",
        "prb2",
        "local.db",
        "--into",
        "inv",
        "--operator",
        f"3={OPERATOR}",
        cwd=tmp_path,
        POOLKEEPER_KEY_OWNER_PID_7=SOLO_SURI,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    desired = load_inventory(tmp_path / "inv")
    accounts = {a.name: a for a in desired.accounts}
    assert set(accounts) == {"owner", "operator-pid-3", "owner-pid-7"}
    assert accounts["owner"].address == OWNER and accounts["owner"].key is None
    assert accounts["operator-pid-3"].address == OPERATOR
    assert accounts["owner-pid-7"].address == SOLO
    for signer in ("operator-pid-3", "owner-pid-7"):
        key = accounts[signer].key
        assert key is not None
        assert key.env == "POOLKEEPER_KEY_" + signer.replace("-", "_").upper()
    pools = {p.name: p for p in desired.pools}
    assert (pools["Main-pool"].pid, pools["Main-pool"].owner) == (3, "owner")
    assert pools["Main-pool"].operator == "operator-pid-3"
    assert (pools["solo"].pid, pools["solo"].owner, pools["solo"].operator) == (
        7,
        "owner-pid-7",
        None,
    )
    workers = {w.name: w for w in desired.workers}
    assert {n: (w.pool, w.state) for n, w in workers.items()} == {
        "rack-w2": ("Main-pool", WorkerState.COMPUTING),
        "w1": ("Main-pool", WorkerState.COMPUTING),
        "w3": ("Main-pool", WorkerState.SYNC_ONLY),
        "w4": ("Main-pool", WorkerState.SYNC_ONLY),  # disabled in PRB
        "w5": ("solo", WorkerState.COMPUTING),
    }
    assert workers["w1"].stake == 5000 * PHA and workers["w5"].endpoint == "http://10.0.0.5:8000"
    assert "export POOLKEEPER_KEY_OPERATOR_PID_3='<the mnemonic" in done.stdout
    assert f"signs as the proxy of owner ({OWNER})" in done.stdout
    assert f"owner-pid-7 ({SOLO}): PRB v2's operator of pool 'solo' (pid 7)" in done.stdout
    # the encrypted operator key is never copied
    written = b"".join(p.read_bytes() for p in (tmp_path / "inv").iterdir())
    for text in (written.decode(), done.stdout, done.stderr):
        assert "PRB-V2-ENCRYPTED" not in text and "legal winner" not in text
        assert SOLO_SURI not in text


def test_without_the_operator_addresses_it_says_how_to_give_them(tmp_path: Path) -> None:
    build_local_db(tmp_path / "local.db")
    done = run("import", "prb2", "local.db", "--into", "inv", cwd=tmp_path)
    assert done.returncode == 1
    assert "encrypted in local.db" in done.stderr, done.stderr
    assert "pool 'Main pool' (pid 3): --operator 3=<SS58> or POOLKEEPER_KEY_OPERATOR_PID_3" in (
        done.stderr
    )
    assert "pool 'solo' (pid 7): --operator 7=<SS58> or POOLKEEPER_KEY_OWNER_PID_7" in done.stderr
    assert not (tmp_path / "inv").exists()


def test_early_schema_and_disabled_as_removed(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "local.db") as db:
        db.execute(POOLS_EARLY)
        db.execute(WORKERS_EARLY)
        db.execute(
            "INSERT INTO pools VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("uuid-p1", 1, "p", OWNER, SECRET, 1, STAMP, STAMP),
        )
        for n, enabled in ((1, 1), (2, 0)):
            db.execute(
                "INSERT INTO workers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f"u{n}", 1, f"w{n}", f"http://h{n}:8000", str(PHA), enabled, STAMP, STAMP),
            )
    done = run(
        "import",
        *("prb2", "local.db", "--into", "inv", "--disabled", "removed"),
        *("--operator", f"1={OPERATOR}"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    states = {w.name: w.state for w in load_inventory(tmp_path / "inv").workers}
    assert states == {"w1": WorkerState.COMPUTING, "w2": WorkerState.REMOVED}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"SQLCipher pages look like noise" * 200, "not a readable SQLite database"),
        (None, "no table pools, workers"),
    ],
)
def test_unreadable_or_foreign_database_is_refused_clearly(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "local.db"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE other (x)")
    else:
        path.write_bytes(content)
    done = run("import", "prb2", "local.db", "--into", "inv", cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "inv").exists()
