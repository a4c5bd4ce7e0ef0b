"""``poolkeeper journal reset [DIR]``: the explicit way out of a damaged journal.

A damaged or missing journal stops every writing command (never a silent fresh start:
that would forget unsettled extrinsics, today's top-ups and created pools). The
operator either restores the file from a backup, or runs this command, which says
what is lost, asks, moves the old file aside (never deletes it) and starts a new one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper.cli._common import InventoryDir, fail
from poolkeeper.errors import JournalDamaged

journal_app = typer.Typer(name="journal", help="The apply journal in the state dir.")

JOURNAL_NAME = "journal.sqlite"


@journal_app.callback()
def _journal() -> None:
    """The apply journal in the state dir."""


def _best_effort_summary(path: Path, day: str) -> str:
    """What a (possibly damaged) journal still shows, read-only; never raises."""
    if not path.is_file():
        return "  nothing can be read from it"
    lines = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return "  nothing can be read from it"
    queries = {
        "unsettled extrinsics": "SELECT COUNT(*) FROM extrinsics WHERE status = 'prepared'",
        "top-ups recorded today (plancks)": (
            f"SELECT COALESCE(SUM(amount), 0) FROM top_ups WHERE day = '{day}'"
        ),
        "created pools": "SELECT COUNT(*) FROM created_pools",
    }
    try:
        for label, query in queries.items():
            try:
                value = db.execute(query).fetchone()[0]
                lines.append(f"  {label}: {value}")
            except sqlite3.Error:
                lines.append(f"  {label}: unreadable")
    finally:
        db.close()
    return "\n".join(lines)


def _aside(path: Path, stamp: str) -> Path | None:
    if not os.path.lexists(path):
        return None
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(target)
    return target


@journal_app.command()
def reset(
    directory: InventoryDir = Path("inventory"),
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Set a damaged journal aside (renamed, not deleted) and start a new one.

    What the old journal recorded is then unknown to poolkeeper: unsettled extrinsics,
    today's top-up history and the pids of pools it created."""
    from poolkeeper.app import state_dir_of
    from poolkeeper.apply.journal import Journal, marker_path, side_files
    from poolkeeper.cli._live import load_desired, lock_state_dir

    desired = load_desired(directory)
    state_dir = state_dir_of(desired, directory)
    lock_state_dir(state_dir, "journal reset")
    path = state_dir / JOURNAL_NAME
    marker = marker_path(path)
    if not os.path.lexists(path) and not marker.exists():
        typer.echo(f"{path}: no journal yet; nothing to reset")
        return
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        Journal(path).close()
        typer.echo(f"{path} is healthy: resetting it throws away good records.")
    except JournalDamaged as error:
        typer.echo(f"{path}: {error.problem}")
    typer.echo(f"What it still shows:\n{_best_effort_summary(path, day)}")
    typer.echo(
        "A reset loses what it recorded:\n"
        "  - unsettled extrinsics: their outcome is no longer followed; actions they carried\n"
        "    are planned again unless the chain already shows them done\n"
        "  - top-up history: today's cap is then counted from the funding accounts'\n"
        "    transfers on chain since 00:00 UTC\n"
        "  - created pools: write their `pid:` into the inventory, or `create: true` pools\n"
        "    may be created again"
    )
    if not yes:
        if not sys.stdin.isatty():
            raise fail("error: refusing to reset the journal without confirmation: pass --yes")
        if not typer.confirm("Reset the journal?", default=False):
            raise fail("Journal reset cancelled.")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        moved = [(p, _aside(p, stamp)) for p in (path, *side_files(path), marker)]
    except OSError as error:
        raise fail(f"error: cannot move the journal aside: {error}") from None
    for old, new in moved:
        if new is not None:
            typer.echo(f"moved {old} to {new}")
    try:
        fresh = Journal(path)
    except (JournalDamaged, OSError, sqlite3.Error) as error:
        raise fail(f"error: cannot create a new journal at {path}: {error}") from None
    with contextlib.suppress(sqlite3.Error):
        fresh.close()
    typer.echo(f"new journal {fresh.journal_id} at {path}")
