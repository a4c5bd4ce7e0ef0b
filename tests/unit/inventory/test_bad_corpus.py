"""Each directory under bad/ is an invalid inventory; expected.txt holds its exact problems.

The lines are compared exactly (file:line:col and text), in order, so a change in
where a message points or how it reads shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from poolkeeper.errors import InventoryError
from poolkeeper.inventory import _yaml, load_inventory

BAD = Path(__file__).parent / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())
# The pure-Python composer words syntax errors differently from the C one.
SYNTAX_CASES = {"yaml_syntax", "yaml_tab_indent"}


def _expected(case: Path) -> list[str]:
    text = (case / "expected.txt").read_text(encoding="utf-8")
    return [line.replace("{root}", str(case)) for line in text.splitlines() if line]


def _problems(case: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(case)
    return caught.value.problems


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_bad_inventory_reports_exactly_the_expected_problems(case: str) -> None:
    assert _problems(BAD / case) == _expected(BAD / case)


@pytest.mark.parametrize("case", sorted(set(CASES) - SYNTAX_CASES))
def test_pure_python_composer_places_problems_identically(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_yaml, "_CParser", None)
    assert _problems(BAD / case) == _expected(BAD / case)


def test_problems_carry_positions_matching_their_text() -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(BAD / "bad_amounts")
    error = caught.value
    assert [f"{f}:{line}:{col}: {text}" for f, line, col, text in error.located] == error.problems


def test_secrets_are_never_echoed() -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(BAD / "secrets")
    text = str(caught.value)
    for word in ("bottom", "lonely", "abandon", "accident", "4bd2e0f5"):
        assert word not in text
    assert text.count("a secret must never be in the inventory") == 3


def test_missing_directory_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "nowhere")
    assert caught.value.problems == [f"{tmp_path / 'nowhere'}: no such directory"]
