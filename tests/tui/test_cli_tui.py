"""``poolkeeper tui`` finds the front end through its entry point, never by import."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from poolkeeper.cli import app
from poolkeeper_tui.app import run_tui

from .conftest import SNAPSHOT


class _FakeEntryPoint:
    def __init__(self, target: Any) -> None:
        self._target = target

    def load(self) -> Any:
        return self._target


def test_the_installed_entry_point_is_the_tui() -> None:
    found = importlib.metadata.entry_points(group="poolkeeper.frontends", name="tui")
    assert [ep.value for ep in found] == ["poolkeeper_tui.app:run_tui"]


def test_tui_command_passes_its_arguments_to_the_front_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[list[str]] = []

    def front_end(argv: list[str]) -> int:
        received.append(argv)
        return 3

    def entry_points(**kw: str) -> list[_FakeEntryPoint]:
        assert kw == {"group": "poolkeeper.frontends", "name": "tui"}
        return [_FakeEntryPoint(front_end)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    result = CliRunner().invoke(app, ["tui", "inv", "--observed", "s.json", "--readonly"])
    assert result.exit_code == 3
    assert received == [["inv", "--observed", "s.json", "--readonly"]]


def test_tui_command_says_so_when_the_front_end_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    result = CliRunner().invoke(app, ["tui"])
    assert result.exit_code == 1
    assert "TUI front end is not installed" in result.output


def test_run_tui_fails_cleanly_on_a_bad_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_tui([str(tmp_path / "missing"), "--observed", str(SNAPSHOT)]) == 1
    assert "no such directory" in capsys.readouterr().err
