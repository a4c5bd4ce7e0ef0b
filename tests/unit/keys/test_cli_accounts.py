"""The accounts commands on the example inventory and on invalid inventories."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolkeeper.cli import app
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import Mnemonic, derive_address

from .conftest import DEV_PHRASE

EXAMPLE = Path(__file__).resolve().parents[3] / "inventory"
ADDRESS_LINE = re.compile(r"^\s+address: [1-9A-HJ-NP-Za-km-z]{47,48}\n$")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    if not EXAMPLE.is_dir():
        pytest.skip(f"no example inventory at {EXAMPLE}")
    root = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, root)
    return root


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), env={"POOLKEEPER_MNEMONIC": DEV_PHRASE} if env is None else env
    )
    return result.exit_code, result.stdout, result.stderr


def test_generate_on_the_example_inventory_adds_only_address_lines(example: Path) -> None:
    before = _snapshot(example)
    derived = [a for a in load_inventory(example).accounts if a.derivation and not a.address]
    assert derived, "the example inventory has no account to generate"

    code, out, err = _run("accounts", "generate", str(example))
    assert code == 0, err

    after = _snapshot(example)
    added: list[str] = []
    for path, old in before.items():
        old_lines = old.decode().splitlines(keepends=True)
        new_lines = after[path].decode().splitlines(keepends=True)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old_lines, b=new_lines).get_opcodes():
            assert tag in ("equal", "insert"), (path, tag, old_lines[i1:i2], new_lines[j1:j2])
            if tag == "insert":
                added.extend(new_lines[j1:j2])
    assert len(added) == len(derived)
    assert all(ADDRESS_LINE.match(line) for line in added), added

    # The result loads, and every derived account now carries its derived address.
    reloaded = {a.name: a for a in load_inventory(example).accounts}
    for account in derived:
        expected = derive_address(Mnemonic(DEV_PHRASE), account.derivation or "")
        assert reloaded[account.name].address == expected
        assert f"account {account.name}: wrote address: {expected}" in out

    code, out, _ = _run("accounts", "generate", str(example), "--check")
    assert code == 0 and f"{len(derived)} declared addresses match" in out


def test_check_mode_writes_nothing_and_exits_2(example: Path) -> None:
    before = _snapshot(example)
    code, out, _ = _run("accounts", "generate", str(example), "--check")
    assert code == 2
    assert "missing address:" in out
    assert _snapshot(example) == before


def test_invalid_inventory_is_reported_and_nothing_written(example: Path) -> None:
    (example / "broken.yaml").write_text(
        "workers:\n  - name: w\n    endpoint: nope\n    colour: red\n"
    )
    before = _snapshot(example)
    code, _, err = _run("accounts", "generate", str(example))
    assert code == 1
    assert "broken.yaml:" in err
    assert _snapshot(example) == before


def test_missing_secret_is_a_clear_error(example: Path) -> None:
    before = _snapshot(example)
    code, _, err = _run("accounts", "generate", str(example), env={"POOLKEEPER_MNEMONIC": ""})
    assert code == 1
    assert "POOLKEEPER_MNEMONIC is not set" in err
    assert _snapshot(example) == before


def test_list_formats(example: Path) -> None:
    desired = load_inventory(example)
    code, out, err = _run("accounts", "list", str(example), "--format", "json")
    assert code == 0, err
    document_text = out
    document = json.loads(out)
    assert document["format_version"] == 2
    assert document["kind"] == "accounts"
    assert document["balances_observed"] is False
    rows = {row["name"]: row for row in document["accounts"]}
    assert set(rows) == {a.name for a in desired.accounts}
    for account in desired.accounts:
        row = rows[account.name]
        assert row["role"] == account.role.value
        if account.derivation:
            assert row["address"] == derive_address(Mnemonic(DEV_PHRASE), account.derivation)
            assert row["address_status"] == ("verified" if account.address else "derived")
        else:
            assert row["address"] == account.address
            assert row["address_status"] == "declared"
        own = account.warn_below
        assert row["warn_below_plancks"] == (
            own if own is not None else desired.settings.warn_below
        )

    code, out, err = _run("accounts", "list", str(example), "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == [
        "name",
        "role",
        "address",
        "address_status",
        "derivation",
        "warn_below_plancks",
        "critical_below_plancks",
        "top_up_from",
    ]
    assert [r["name"] for r in table] == [a.name for a in desired.accounts]
    assert "balances are not observed" in err

    code, out, _ = _run("accounts", "list", str(example))
    assert code == 0
    assert out.startswith("# balances are not observed yet")
    assert all(a.name in out for a in desired.accounts)

    # --json is --format json; the table is drawn as `list accounts` draws its own.
    assert _run("accounts", "list", str(example), "--json")[1] == document_text
    assert out.splitlines()[2].split()[:3] == ["NAME", "ROLE", "ADDRESS"]


def test_list_without_secret_marks_addresses_unknown(example: Path) -> None:
    code, out, err = _run(
        "accounts", "list", str(example), "--format", "json", env={"POOLKEEPER_MNEMONIC": ""}
    )
    assert code == 0
    assert "addresses are not derived or checked" in err
    statuses = {row["address_status"] for row in json.loads(out)["accounts"]}
    assert statuses <= {"unknown", "declared"}


def test_list_flags_a_mismatching_address(tmp_path: Path) -> None:
    wrong = derive_address(Mnemonic(DEV_PHRASE), "other")
    (tmp_path / "a.yaml").write_text(
        f"accounts:\n  - name: a\n    role: owner\n    derivation: a\n    address: {wrong}\n"
    )
    code, out, _ = _run("accounts", "list", str(tmp_path), "--format", "json")
    assert code == 0
    assert json.loads(out)["accounts"][0]["address_status"] == "mismatch"


def test_new_secret_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "secret"
    code, out, err = _run("accounts", "new-secret", "--file", str(target))
    assert code == 0
    assert out.strip() == str(target)
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    content = target.read_bytes()
    assert len(content.split()) == 24
    code, _, err = _run("accounts", "new-secret", "--file", str(target))
    assert code == 1 and "refusing to overwrite" in err
    assert target.read_bytes() == content
