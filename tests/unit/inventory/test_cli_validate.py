"""`poolkeeper validate` prints a summary or every problem, and exits 0 or 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolkeeper.cli import app

REPO = Path(__file__).resolve().parents[3]
BAD = Path(__file__).parent / "bad"
runner = CliRunner()


def test_valid_inventory_prints_counts() -> None:
    result = runner.invoke(app, ["validate", str(REPO / "inventory")])
    assert result.exit_code == 0, result.output
    assert result.output == f"{REPO / 'inventory'}/: valid (2 pools, 8 workers, 6 accounts)\n"


def test_default_directory_is_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "inventory", tmp_path / "inventory")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.output == "inventory/: valid (2 pools, 8 workers, 6 accounts)\n"


def test_invalid_inventory_prints_every_problem_then_the_count() -> None:
    case = BAD / "bad_amounts"
    result = runner.invoke(app, ["validate", str(case)])
    assert result.exit_code == 1
    expected = (case / "expected.txt").read_text().splitlines()
    assert result.output.splitlines() == [*expected, f"{len(expected)} problems"]


def test_json_output_for_a_valid_inventory() -> None:
    result = runner.invoke(app, ["validate", str(REPO / "inventory"), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["format_version"] == 1
    assert report["valid"] is True
    assert report["counts"] == {"pools": 2, "workers": 8, "accounts": 6}
    assert report["problems"] == []


def test_json_output_for_an_invalid_inventory() -> None:
    result = runner.invoke(app, ["validate", str(BAD / "bad_state"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["format_version"] == 1 and report["valid"] is False
    assert report["problems"] == [
        {
            "file": "workers.yaml",
            "line": 5,
            "col": 12,
            "message": "workers[0].state: 'running' is not one of computing, idle, "
            "sync_only, removed",
        }
    ]


def test_secret_is_not_printed() -> None:
    for flag in ([], ["--json"]):
        result = runner.invoke(app, ["validate", str(BAD / "secrets"), *flag])
        assert result.exit_code == 1
        assert "bottom" not in result.output and "abandon" not in result.output
