"""``poolkeeper history``: the audit log read back, filtered, as text or JSON.

A read-only command: it needs the inventory only to find the state directory, never the
chain or the master secret, so an operator can ask "what did poolkeeper send last night
for worker w7?" from any machine holding the state directory.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper.apply.audit import AUDIT_FILE, read_selected, render_history
from poolkeeper.cli._common import InventoryDir, JsonFlag, fail

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``7d`` (before ``now``) or an ISO 8601 time (UTC when no zone)."""
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration (30m, 2h, 7d) or an ISO time "
            "(2026-01-31T12:00:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def history_command(
    directory: InventoryDir = Path("inventory"),
    *,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only entries after this: a duration (30m, 2h, 7d) or ISO.",
        ),
    ] = None,
    worker: Annotated[
        str | None,
        typer.Option("--worker", metavar="NAME", help="Only extrinsics touching this worker."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the extrinsics poolkeeper sent (its audit log), oldest first."""
    from poolkeeper.app import state_dir_of
    from poolkeeper.cli._live import load_desired

    desired = load_desired(directory)
    path = state_dir_of(desired, directory) / AUDIT_FILE
    try:
        cutoff = parse_since(since, datetime.now(UTC)) if since else None
    except ValueError as error:
        raise fail(f"error: {error}") from None
    try:
        read = read_selected(path, since=cutoff, worker=worker)
    except OSError as error:
        raise fail(f"error: cannot read {path}: {error.strerror or error}") from None
    entries, warnings = read.entries, read.warnings
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        document = {"format_version": 1, "audit_log": str(path), "extrinsics": entries}
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        typer.echo(render_history(entries, worker), nl=False)
