"""`accounts generate` writes the missing addresses and changes no other byte."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from poolkeeper.errors import DerivationError
from poolkeeper.keys import Mnemonic, derive_address, generate_addresses
from poolkeeper.model.desired import AccountRole, AccountSpec, SourceRef

from .conftest import DEV_PHRASE

# Comments everywhere, odd indentation and quoting, anchors, several documents,
# a file ending without a newline: everything an operator's hand may leave.
ACCOUNTS_YAML = """\
# Accounts poolkeeper derives and watches.
#   derivation: hard junctions below //poolkeeper of the master secret
settings:
  warn_below: "20 PHA"   # default threshold

accounts:    # the list
  # --- pool A ---
  - name: op-a          # the operator (hot key)
    role:    operator
    derivation: "operator//pool-a"      # quoted, trailing comment
    # thresholds follow
    warn_below:   '50 PHA'
    critical_below: 10 PHA

  -   name: 'owner-a'
      role: owner
      derivation: owner//pool-a
      top_up: {from: funding, to: "50 PHA", max_per_day: "500 PHA"}

  - name: watched
    role: watch
    address: 46Kh7JtmB6XZqdbhQMuUXmfeuNe8LsBpj4ZpXDzYPCHRCVLP   # someone else's
---
# a second document in the same file
accounts:
- name: funding
  role: funding
  derivation: >-
    funding
- name: "relay"
  # comment between keys
  role: relay_signer
  derivation: relay//0
  warn_below: 5 PHA   # last line has no newline"""

WORKERS_YAML = """\
workers:   # untouched file
  - {name: w1, endpoint: "http://10.0.0.1:8000", pool: a}
"""

ADDRESS_LINE = re.compile(r"^\s*address: [1-9A-HJ-NP-Za-km-z]{47,48}\r?\n?$")


def _inventory(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "inventory"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return root


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(added lines, removed-or-replaced lines) between two texts, line by line."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    added: list[str] = []
    removed: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if tag == "equal":
            continue
        removed.extend(old[i1:i2])
        added.extend(new[j1:j2])
    return added, removed


def test_only_address_lines_are_added(tmp_path: Path) -> None:
    root = _inventory(tmp_path, {"accounts.yaml": ACCOUNTS_YAML, "workers/w.yaml": WORKERS_YAML})
    mnemonic = Mnemonic(DEV_PHRASE)
    result = generate_addresses(root, mnemonic)

    after = (root / "accounts.yaml").read_text()
    added, removed = _changed_lines(ACCOUNTS_YAML, after)
    assert removed == []
    assert len(added) == 4
    assert all(ADDRESS_LINE.match(line) for line in added), added
    labels = ("operator//pool-a", "owner//pool-a", "funding", "relay//0")
    assert {line.split()[-1] for line in added} == {derive_address(mnemonic, d) for d in labels}
    assert {c.account for c in result.written} == {"op-a", "owner-a", "funding", "relay"}
    assert (root / "workers/w.yaml").read_text() == WORKERS_YAML

    # Each address sits in its own account at that account's indentation, after the derivation.
    lines = after.splitlines()
    op_a = lines.index('    derivation: "operator//pool-a"      # quoted, trailing comment')
    assert lines[op_a + 1] == f"    address: {derive_address(mnemonic, 'operator//pool-a')}"
    owner = lines.index("      derivation: owner//pool-a")
    assert lines[owner + 1] == f"      address: {derive_address(mnemonic, 'owner//pool-a')}"
    funding = lines.index("    funding")
    assert lines[funding + 1] == f"  address: {derive_address(mnemonic, 'funding')}"


def test_file_ending_without_newline(tmp_path: Path) -> None:
    text = "accounts:\n  - name: a\n    role: owner\n    derivation: a"
    root = _inventory(tmp_path, {"a.yaml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    address = derive_address(Mnemonic(DEV_PHRASE), "a")
    assert (root / "a.yaml").read_text() == text + f"\n    address: {address}\n"


def test_second_run_changes_nothing_and_verifies(tmp_path: Path) -> None:
    root = _inventory(tmp_path, {"accounts.yaml": ACCOUNTS_YAML})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    once = (root / "accounts.yaml").read_bytes()
    result = generate_addresses(root, Mnemonic(DEV_PHRASE))
    assert result.written == []
    assert sorted(result.verified) == ["funding", "op-a", "owner-a", "relay"]
    assert (root / "accounts.yaml").read_bytes() == once


def test_plain_diff_has_only_added_address_lines(tmp_path: Path) -> None:
    text = (
        "accounts:\n"
        "  - name: a\n"
        "    role: operator\n"
        "    derivation: a\n"
        "    # c\n"
        "  - name: b\n"
        "    role: owner\n"
        "    derivation: b\n"
    )
    root = _inventory(tmp_path, {"a.yml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    added, removed = _changed_lines(text, (root / "a.yml").read_text())
    assert removed == []
    assert len(added) == 2 and all(ADDRESS_LINE.match(line) for line in added)


def test_crlf_and_bom_are_kept(tmp_path: Path) -> None:
    text = (
        "\ufeffaccounts:\r\n"
        "  - name: a   # x\r\n"
        "    role: operator\r\n"
        "    derivation: a\r\n"
        "    warn_below: 1 PHA\r\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    raw = (root / "a.yaml").read_bytes()
    assert raw.startswith("\ufeff".encode())
    after = raw.decode()
    added, removed = _changed_lines(text, after)
    assert removed == []
    assert added == [f"    address: {derive_address(Mnemonic(DEV_PHRASE), 'a')}\r\n"]


def test_flow_mapping_gets_the_address_inline(tmp_path: Path) -> None:
    text = "accounts:\n  - {name: a, role: owner, derivation: 'a'}   # flow\n"
    root = _inventory(tmp_path, {"a.yaml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    address = derive_address(Mnemonic(DEV_PHRASE), "a")
    assert (root / "a.yaml").read_text() == (
        f"accounts:\n  - {{name: a, role: owner, derivation: 'a', address: {address}}}   # flow\n"
    )


def test_empty_address_is_filled_in(tmp_path: Path) -> None:
    text = (
        "accounts:\n"
        "  - name: a\n"
        "    address:    # to fill\n"
        "    role: owner\n"
        "    derivation: a\n"
        "  - name: b\n"
        "    address: null\n"
        "    role: owner\n"
        "    derivation: b\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    a, b = (derive_address(Mnemonic(DEV_PHRASE), x) for x in "ab")
    after = (root / "a.yaml").read_text()
    assert f"    address: {a}    # to fill\n" in after
    assert f"    address: {b}\n" in after


def test_mismatch_names_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    wrong = derive_address(Mnemonic(DEV_PHRASE), "something-else")
    text = (
        "accounts:\n"
        "  - name: missing\n    role: owner\n    derivation: m\n"
        f"  - name: wrong\n    role: operator\n    derivation: w\n    address: {wrong}\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    with pytest.raises(DerivationError) as info:
        generate_addresses(root, Mnemonic(DEV_PHRASE))
    message = str(info.value)
    assert f"{root / 'a.yaml'}:8: account wrong: address {wrong} is not the address" in message
    assert "bottom" not in message
    assert (root / "a.yaml").read_text() == text


def test_bad_label_is_reported_and_nothing_written(tmp_path: Path) -> None:
    text = (
        "accounts:\n"
        "  - name: a\n"
        "    role: owner\n"
        "    derivation: a\n"
        "  - name: b\n"
        "    role: owner\n"
        "    derivation: b/c\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    with pytest.raises(DerivationError, match=r"a\.yaml:5: account b: derivation label 'b/c'"):
        generate_addresses(root, Mnemonic(DEV_PHRASE))
    assert (root / "a.yaml").read_text() == text


def test_loader_specs_choose_the_mapping_by_source(tmp_path: Path) -> None:
    text = "accounts:\n  - name: a\n    role: owner\n    derivation: a\n"
    root = _inventory(tmp_path, {"one.yaml": text, "two/other.yaml": "accounts: []\n"})
    specs = [
        AccountSpec(
            name="a",
            role=AccountRole.OWNER,
            derivation="a",
            source=SourceRef(file="one.yaml", line=2, col=5),
        )
    ]
    result = generate_addresses(root, Mnemonic(DEV_PHRASE), specs, write=False)
    assert [c.line for c in result.written] == [2]
    assert (root / "one.yaml").read_text() == text  # write=False
    generate_addresses(root, Mnemonic(DEV_PHRASE), specs)
    assert "address:" in (root / "one.yaml").read_text()


def test_file_mode_is_kept(tmp_path: Path) -> None:
    root = _inventory(
        tmp_path, {"a.yaml": "accounts:\n  - name: a\n    role: owner\n    derivation: a\n"}
    )
    (root / "a.yaml").chmod(0o640)
    generate_addresses(root, Mnemonic(DEV_PHRASE))
    assert (root / "a.yaml").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in root.iterdir()] == ["a.yaml"]


def test_two_accounts_with_one_label_are_refused(tmp_path: Path) -> None:
    text = (
        "accounts:\n  - name: a\n    role: owner\n    derivation: same\n"
        "  - name: b\n    role: operator\n    derivation: same\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    with pytest.raises(DerivationError, match="already used by account a"):
        generate_addresses(root, Mnemonic(DEV_PHRASE))
    assert (root / "a.yaml").read_text() == text


def test_accounts_built_with_merge_keys(tmp_path: Path) -> None:
    from poolkeeper.inventory import load_inventory

    text = (
        "accounts:\n"
        "  - &base\n    name: a\n    role: owner\n    derivation: a\n"
        "  - <<: *base\n    name: b\n    derivation: b\n"
        "  - name: c   # c\n    <<: *base\n    derivation: c\n"
    )
    root = _inventory(tmp_path, {"a.yaml": text})
    generate_addresses(root, Mnemonic(DEV_PHRASE), load_inventory(root).accounts)
    added, removed = _changed_lines(text, (root / "a.yaml").read_text())
    assert removed == [] and len(added) == 3
    assert all(ADDRESS_LINE.match(line) for line in added)
    reloaded = {a.name: a.address for a in load_inventory(root).accounts}
    assert reloaded == {x: derive_address(Mnemonic(DEV_PHRASE), x) for x in "abc"}
