"""``poolkeeper import prb3``: PRB v3's JSON (as prb-config and POST /wm/config print it)
becomes an inventory that validates, through the real CLI in a subprocess; no secret
given to PRB appears in any file written or in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sr25519
from substrateinterface import Keypair

from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic
from poolkeeper.model.desired import WorkerState

SRC = Path(__file__).resolve().parents[3] / "src"
PHA = 10**12
OWNER = Keypair.create_from_uri("//PrbOwner", ss58_format=30).ss58_address
OPERATOR = Keypair.create_from_uri("//PrbOperator", ss58_format=30).ss58_address
OWNER_B = Keypair.create_from_uri("//PrbOwnerB", ss58_format=30).ss58_address


def worker(name: str, port: int, stake: int, **flags: bool) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{port:012d}",
        "name": name,
        "endpoint": f"http://10.0.0.{port % 250}:8000/",
        "stake": str(stake),
        "pid": None,
        "enabled": flags.get("enabled", True),
        "sync_only": flags.get("sync_only", False),
        "gatekeeper": flags.get("gatekeeper", False),
    }


def pools_export() -> list[dict[str, Any]]:
    """The shape of `prb-config get-all-pools-with-workers` (inv_db::Pool, Worker)."""
    return [
        {
            "id": "pool-vertex-1",
            "name": "Main pool",
            "pid": 3,
            "enabled": True,
            "sync_only": False,
            "workers": [
                worker("rack1/w1", 1, 5000 * PHA),
                worker("rack1-w2", 2, 2500 * PHA + 1),
                worker("rack1-w3", 3, 0, sync_only=True),
                worker("rack1-w4", 4, 1000 * PHA, enabled=False),
            ],
        },
        {
            "id": "pool-vertex-2",
            "name": "second",
            "pid": 7,
            "enabled": True,
            "sync_only": False,
            "workers": [
                worker("b1", 11, 3000 * PHA),
                worker("b2", 12, 3000 * PHA, gatekeeper=True),
                worker("b3", 13, 3000 * PHA),
                worker("b4", 14, 3000 * PHA),
            ],
        },
    ]


def operators_export() -> list[dict[str, Any]]:
    """The shape of `prb-config get-all-pool-operators` (PoolOperatorForSerialize)."""
    return [
        {"pid": 3, "operator_account_id": OPERATOR, "proxied_account_id": OWNER},
        {"pid": 7, "operator_account_id": OWNER_B, "proxied_account_id": None},
    ]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
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


def write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def test_pools_and_operators_import_to_a_valid_inventory(tmp_path: Path) -> None:
    pools = write(tmp_path / "pools.json", pools_export())
    ops = write(tmp_path / "ops.json", operators_export())
    into = tmp_path / "inv"
    done = run("import", "prb3", str(pools), str(ops), "--into", str(into), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "valid (2 pools, 8 workers, 3 accounts)" in done.stdout
    desired = load_inventory(into)
    accounts = {a.name: a for a in desired.accounts}
    pool_a, pool_b = desired.pools
    assert (pool_a.name, pool_a.pid, pool_b.name, pool_b.pid) == ("Main-pool", 3, "second", 7)
    # pool 3: PRB signs with the operator key as a proxy of the owner
    assert accounts[pool_a.owner].address == OWNER and accounts[pool_a.owner].key is None
    assert pool_a.operator is not None and pool_a.proxied
    assert accounts[pool_a.operator].address == OPERATOR
    assert accounts[pool_a.operator].key is not None
    assert accounts[pool_a.operator].key.env == "POOLKEEPER_KEY_OPERATOR"
    # pool 7: no proxy, the operator key is the owner's own
    assert pool_b.operator is None and accounts[pool_b.owner].address == OWNER_B
    assert accounts[pool_b.owner].key is not None
    workers = {w.name: w for w in desired.workers}
    assert workers["rack1-w1"].stake == 5000 * PHA
    assert workers["rack1-w1"].state is WorkerState.COMPUTING
    assert workers["rack1-w2"].stake == 2500 * PHA + 1
    assert workers["rack1-w3"].state is WorkerState.SYNC_ONLY
    assert workers["rack1-w4"].state is WorkerState.SYNC_ONLY  # disabled
    assert workers["b2"].state is WorkerState.SYNC_ONLY and workers["b2"].labels == {
        "prb": "gatekeeper"
    }
    assert workers["b1"].endpoint == "http://10.0.0.11:8000/"
    assert "export POOLKEEPER_KEY_OPERATOR=" in done.stdout
    assert "rack1/w1" in done.stdout  # the rename is reported
    again = run("validate", str(into), cwd=tmp_path)
    assert again.returncode == 0, again.stdout


def test_disabled_workers_can_be_imported_as_removed(tmp_path: Path) -> None:
    pools = write(tmp_path / "pools.json", pools_export())
    ops = write(tmp_path / "ops.json", operators_export())
    into = tmp_path / "inv"
    done = run(
        "import",
        "prb3",
        str(pools),
        str(ops),
        "--into",
        str(into),
        "--disabled",
        "removed",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert load_inventory(into).workers_by_name["rack1-w4"].state is WorkerState.REMOVED


def test_http_reply_kept_as_a_json_string_is_read_too(tmp_path: Path) -> None:
    pools = tmp_path / "reply.json"
    pools.write_text(json.dumps(json.dumps(pools_export(), indent=2)), encoding="utf-8")
    ops = write(tmp_path / "ops.json", operators_export())
    done = run("import", "prb3", str(pools), str(ops), "--into", str(tmp_path / "i"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_an_existing_file_is_never_overwritten_and_nothing_is_written(tmp_path: Path) -> None:
    pools = write(tmp_path / "pools.json", pools_export())
    ops = write(tmp_path / "ops.json", operators_export())
    into = tmp_path / "inv"
    into.mkdir()
    (into / "workers.yaml").write_text("# mine\n")
    done = run("import", "prb3", str(pools), str(ops), "--into", str(into), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{into / 'workers.yaml'} already exists" in done.stderr
    assert "Traceback" not in done.stderr
    assert (into / "workers.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in into.iterdir()) == ["workers.yaml"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2", "not JSON"),
        (json.dumps([{"foo": 1}]), "item 0: not a PRB v3 pool"),
        (json.dumps([{**pools_export()[0], "pid": -1}]), "item 0.pid: expected a pool id"),
    ],
)
def test_bad_input_names_the_file_and_item(tmp_path: Path, data: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(data)
    done = run("import", "prb3", str(bad), "--into", str(tmp_path / "i"), cwd=tmp_path)
    assert done.returncode == 1
    assert str(bad) in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "i").exists()


def test_pools_without_operators_say_what_to_export(tmp_path: Path) -> None:
    pools = write(tmp_path / "pools.json", pools_export())
    done = run("import", "prb3", str(pools), "--into", str(tmp_path / "i"), cwd=tmp_path)
    assert done.returncode == 1
    assert "no pool operator for 'Main pool' (pid 3), 'second' (pid 7)" in done.stderr
    assert "get-all-pool-operators" in done.stderr


def test_no_secret_given_to_prb_appears_in_any_file_or_output(tmp_path: Path) -> None:
    """SetPoolOperator bodies carry the operator's mnemonic (Seed) or secret key
    (SecretKey): the import computes the public address and writes no part of either."""
    phrase = Mnemonic.generate(12).reveal()
    mini = os.urandom(32)
    public, private = sr25519.pair_from_seed(mini)
    expanded = bytes(sr25519.convert_secret_key_to_ed25519(bytes(private))).hex()
    commands = [
        {
            "SetPoolOperator": {
                "pid": 3,
                "account": phrase,
                "account_type": "Seed",
                "proxied_account_id": OWNER,
            }
        },
        {
            "SetPoolOperator": {
                "pid": 7,
                "account": expanded,
                "account_type": "SecretKey",
                "proxied_account_id": None,
            }
        },
    ]
    pools = write(tmp_path / "pools.json", pools_export())
    cmds = write(tmp_path / "set-operators.json", commands)
    into = tmp_path / "inv"
    done = run("import", "prb3", str(pools), str(cmds), "--into", str(into), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    desired = load_inventory(into)
    by_address = {a.address: a for a in desired.accounts}
    signer_a = Keypair.create_from_mnemonic(phrase, ss58_format=30).ss58_address
    signer_b = Keypair(public_key=bytes(public), ss58_format=30).ss58_address
    assert by_address[signer_a].key is not None and by_address[signer_b].key is not None
    assert desired.pools_by_name["second"].owner == by_address[signer_b].name
    written = "".join(p.read_text() for p in into.rglob("*") if p.is_file())
    haystack = written + done.stdout + done.stderr
    words = phrase.split()
    for i in range(len(words) - 2):
        assert " ".join(words[i : i + 3]) not in haystack
    for secret_hex in (expanded, mini.hex(), bytes(private).hex()):
        for i in range(0, len(secret_hex) - 16, 8):
            assert secret_hex[i : i + 16] not in haystack


def test_a_bad_secret_is_refused_without_showing_it(tmp_path: Path) -> None:
    bad = "zebra quartz violin hollow copper lantern maple orchid velvet harbor nickel prism"
    cmds = write(
        tmp_path / "set.json",
        {"SetPoolOperator": {"pid": 3, "account": bad, "account_type": "Seed"}},
    )
    pools = write(tmp_path / "pools.json", pools_export())
    done = run("import", "prb3", str(pools), str(cmds), "--into", str(tmp_path / "i"), cwd=tmp_path)
    assert done.returncode == 1
    assert "SetPoolOperator.account: not a valid BIP39" in done.stderr
    assert "quartz" not in done.stderr + done.stdout
