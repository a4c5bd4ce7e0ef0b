"""YAML features an attacker or a tired operator might use: they end in problems, never hangs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from poolkeeper.errors import InventoryError
from poolkeeper.inventory import load_inventory


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "inv.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path)
    return caught.value.problems


def test_alias_bomb_is_stopped_quickly(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    text = "x-bomb:\n" + "\n".join("  " + line for line in levels) + "\n"
    start = time.perf_counter()
    problems = _problems(tmp_path, text)
    assert time.perf_counter() - start < 5
    assert problems == ["inv.yaml:1:1: file expands to too many nodes (aliases nested too deep?)"]


def test_deep_nesting_is_one_problem(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "workers: " + "[" * 200 + "]" * 200 + "\n")
    assert problems == ["inv.yaml:1:73: YAML nesting deeper than 64 levels"]


def test_undefined_alias_is_placed(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "workers:\n  - *nothing\n")
    assert problems == [
        "inv.yaml:2:5: YAML: alias '*nothing' refers to no anchor '&nothing' above it"
    ]


def test_merge_of_a_non_mapping_is_a_problem(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "workers:\n  - <<: [a, b]\n    name: w\n")
    assert "inv.yaml:2:10: '<<' merges only mappings (write '<<: *anchor')" in problems
    assert "inv.yaml:2:13: '<<' merges only mappings (write '<<: *anchor')" in problems


def test_plain_scalars_follow_yaml_1_2(tmp_path: Path) -> None:
    # YAML 1.1 would read `yes` as true and `0o17`-style or `on` differently; 1.2 keeps text.
    problems = _problems(
        tmp_path,
        "workers:\n  - {name: yes, endpoint: on, pool: 0x1F, stake: 1_000 PHA, state: null}\n",
    )
    assert "workers[0].pool: expected text, got 31 (put it in quotes to make it text)" in (
        " ".join(problems)
    )
    assert not any("workers[0].name" in p for p in problems)
    assert any("workers[0].state: nothing (null) is not one of" in p for p in problems)


def test_pool_id_must_fit_a_u64(tmp_path: Path) -> None:
    text = (
        "accounts: [{name: o, role: owner, derivation: o}]\n"
        "pools: [{name: p, pid: 18446744073709551616, owner: o}]\n"
    )
    assert _problems(tmp_path, text) == [
        "inv.yaml:2:24: pools[0].pid: must be a pool id below 2^64 (a u64 on chain), "
        "got 18446744073709551616"
    ]
