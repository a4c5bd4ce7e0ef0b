"""What every command shares: the one ``fail()``, the options written once, the help style.

Each command module used to define its own ``_fail`` and spell its own ``--json``,
``--target`` or inventory argument, so the same flag read differently from one command
to the next. They are defined here once; a command module imports them, and the root
(``poolkeeper.cli``) applies the help style to the whole command tree.

Output convention: human text on stdout by default; ``--json`` wherever a machine reads
(one JSON document with ``format_version``); errors and notes on stderr, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from poolkeeper.keys import redact
from poolkeeper.logs import LogFormatChoice


def fail(message: str) -> typer.Exit:
    """Print ``message`` (secrets masked) on stderr; the ``Exit(1)`` to raise.

    ``raise fail(f"error: {error}") from None``: the operator sees the message, never a
    traceback. The caller writes the ``error:`` prefix (some messages are inventory
    problem lists, which carry their own locations)."""
    typer.echo(redact(message), err=True)
    return typer.Exit(1)


def inventory_problems(problems: list[str]) -> str:
    """An invalid inventory as every command reports it: the problems, then their count."""
    return "\n".join(problems) + f"\n{len(problems)} problem(s)"


InventoryDir = Annotated[Path, typer.Argument(help="Inventory directory.")]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Machine-readable output: one JSON document.")
]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        metavar="TARGET",
        help="Limit to pool/<name-or-pid> or worker/<name> (repeat).",
    ),
]
Prune = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Allow destructive steps the inventory does not declare (taking out "
        "undeclared workers, lowering stakes).",
    ),
]
Colour = Annotated[
    bool | None,
    typer.Option("--color/--no-color", help="Colour (default: on a terminal)."),
]
ObservedSnapshot = Annotated[
    Path | None,
    typer.Option(
        "--observed",
        metavar="FILE",
        help="Use this observed-state snapshot (JSON of Observed) instead of the live chain.",
    ),
]
LogFormatOption = Annotated[
    LogFormatChoice,
    typer.Option(
        "--log-format",
        help="Log lines as text or as JSON objects (ts, level, event, worker, pool, and so on).",
    ),
]
VerboseOption = Annotated[
    int, typer.Option("-v", "--verbose", count=True, help="More log detail (repeat).")
]
QuietOption = Annotated[
    int, typer.Option("-q", "--quiet", count=True, help="Less log detail (repeat).")
]


class SummaryGroup(TyperGroup):
    """A command group whose command list shows each command's whole first sentence.

    Click cuts a summary to the terminal width minus the name column and ends it with
    ``...``; a cut summary reads as a broken sentence. Here the summary is the command's
    ``short_help`` or the first sentence of its help, wrapped rather than cut."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:  # typer's vendored click types
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=UNCUT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


UNCUT = 1_000_000
"""A summary length limit no summary reaches: click then stops at the first sentence."""
