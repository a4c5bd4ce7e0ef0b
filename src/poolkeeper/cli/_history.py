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
from typing import Annotated, Any

import typer

from poolkeeper.apply.audit import AUDIT_FILE, read_audit, select
from poolkeeper.cli._common import InventoryDir, JsonFlag, fail
from poolkeeper.model.amounts import format_pha

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


def render_history(entries: list[dict[str, Any]], worker: str | None = None) -> str:
    """One block per extrinsic; with ``worker``, only that worker's calls are listed."""
    if not entries:
        return "No extrinsics recorded.\n"
    out: list[str] = []
    for e in entries:
        signer = e.get("signer") or {}
        block = e.get("block") or {}
        fee = e.get("fee")
        fee_text = "-"
        if isinstance(fee, dict) and fee.get("plancks") is not None:
            fee_text = format_pha(int(fee["plancks"])) + (
                " (estimated)" if fee.get("estimated") else ""
            )
        where = f"#{block['number']}" if block.get("number") is not None else "no block"
        name = signer.get("name") or signer.get("address")
        out.append(
            f"{e.get('ts', '?')}  {e.get('status', '?')}  {where}  {e.get('hash', '?')}\n"
            f"  signer {name} ({signer.get('address')}) nonce {e.get('nonce')}  fee {fee_text}"
        )
        calls = [c for c in e.get("calls") or [] if isinstance(c, dict)]
        shown = [c for c in calls if worker is None or c.get("worker") == worker]
        for c in shown:
            verdict = "ok" if c.get("ok") else f"FAILED: {c.get('error')}"
            out.append(f"  - {c.get('call') or '?'}  {c.get('action')}  {verdict}")
        if len(shown) < len(calls):
            out.append(f"  (and {len(calls) - len(shown)} call(s) for other workers)")
        if e.get("error"):
            out.append(f"  error: {e['error']}")
    return "\n".join(out) + "\n"


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
    if not path.exists():
        entries: list[dict[str, Any]] = []
        warnings: list[str] = []
    else:
        try:
            read = read_audit(path)
        except OSError as error:
            raise fail(f"error: cannot read {path}: {error.strerror or error}") from None
        entries = list(select(read.entries, since=cutoff, worker=worker))
        warnings = read.warnings
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        document = {"format_version": 1, "audit_log": str(path), "extrinsics": entries}
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        typer.echo(render_history(entries, worker), nl=False)
