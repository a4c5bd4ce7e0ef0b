"""Every command's ``--help`` reads as plain text: no ``<bool>`` type labels beside flags,
and every summary in a command list is a whole sentence (never cut with "...")."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main
from typer.testing import CliRunner

from poolkeeper.cli import app


def _paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], bool]]:
    subcommands = getattr(command, "commands", None)
    yield path, subcommands is not None
    for name, sub in sorted((subcommands or {}).items()):
        yield from _paths(sub, (*path, name))


TREE = list(_paths(typer.main.get_command(app)))
PATHS = [p for p, _ in TREE]
GROUPS = [p for p, is_group in TREE if is_group]
ROW = re.compile(r"^  (\S+)\s{2,}(\S.*)$")


def _help(path: tuple[str, ...], width: int = 80) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.output


def _summaries(text: str) -> dict[str, str]:
    """The ``Commands:`` section as {name: summary}, wrapped lines joined."""
    rows: dict[str, str] = {}
    name = None
    section = text.split("\nCommands:\n", 1)[1]
    for line in section.splitlines():
        if not line.strip():
            break
        match = ROW.match(line)
        if match:
            name = match.group(1)
            rows[name] = match.group(2).strip()
        elif name is not None and line.startswith("    "):
            rows[name] += " " + line.strip()
    return rows


def test_every_command_is_covered() -> None:
    names = {p[0] for p in PATHS if p}
    assert {"plan", "apply", "run", "status", "list", "accounts", "history"} <= names
    assert len(PATHS) > 20
    assert {(), ("accounts",), ("journal",), ("import",)} <= set(GROUPS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "poolkeeper")
def test_help_has_no_bool_labels(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "<bool>" not in text
    assert "<list[str]>" not in text
    assert "╭" not in text  # plain help, not rich panels


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "poolkeeper")
def test_command_summaries_are_whole_sentences(path: tuple[str, ...], width: int) -> None:
    rows = _summaries(_help(path, width))
    assert rows
    for name, summary in rows.items():
        assert not summary.endswith(("...", "…")), f"{name}: cut summary {summary!r}"
        assert summary.endswith((".", ".)")), f"{name}: summary ends mid-sentence {summary!r}"
