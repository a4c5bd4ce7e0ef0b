"""``poolkeeper import prb3|prb2|csv``: an inventory from PRB v3 records, PRB v2's
local.db or a CSV.

The import is checked as a whole before anything is written: the draft is validated
by the inventory loader in a scratch directory, and no file in ``--into`` is ever
overwritten. The output names every key the operator must provide (environment
variable or 0600 file) and never contains a secret from the input.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from poolkeeper.cli._common import fail
from poolkeeper.errors import InventoryError
from poolkeeper.importers import (
    DisabledAs,
    Draft,
    ImportFailed,
    PoolOwners,
    parse_operators,
    read_csv,
    read_prb2,
    read_prb3,
    write_draft,
)
from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import Desired

import_app = typer.Typer(
    name="import",
    help="Write an inventory from PRB v3 records, PRB v2's local.db or a CSV of workers.",
)

_Into = Annotated[
    Path,
    typer.Option(
        "--into",
        metavar="DIRECTORY",
        help="Inventory directory to write (existing files are kept).",
    ),
]
_Chain = Annotated[
    list[str] | None,
    typer.Option(
        "--chain", metavar="URL", help="Chain node websocket URL for settings (repeatable)."
    ),
]
_Network = Annotated[
    str, typer.Option("--network", metavar="NETWORK", help="khala, phala or devnet.")
]

_Disabled = Annotated[
    str,
    typer.Option(
        "--disabled",
        metavar="STATE",
        help="State of PRB's disabled workers: sync_only or removed.",
    ),
]


def _disabled_as(disabled: str) -> DisabledAs:
    if disabled not in ("sync_only", "removed"):
        raise fail(f"error: --disabled must be sync_only or removed, got {disabled!r}")
    return "removed" if disabled == "removed" else "sync_only"


def _settings(network: str, chain: list[str] | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"network": network}
    if chain:
        settings["chain"] = {"endpoints": list(chain)}
    if network == "devnet":  # the devnet's simulated pRuntimes attest without a provider
        settings["relay"] = {"attestation_provider": "none"}
    return settings


@import_app.command("prb3")
def import_prb3(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="JSON printed by prb-config / POST /wm/config: GetAllPoolsWithWorkers, "
            "GetAllPoolOperators (or AddPool/AddWorker/SetPoolOperator commands)."
        ),
    ],
    *,
    into: _Into,
    disabled: _Disabled = "sync_only",
    network: _Network = "khala",
    chain: _Chain = None,
) -> None:
    """Import PRB v3 pools, workers and pool operators (secrets are never written)."""
    state = _disabled_as(disabled)
    try:
        draft = read_prb3(files, disabled=state, settings=_settings(network, chain))
    except ImportFailed as error:
        raise fail(f"error: {error}") from None
    _check_and_write(draft, into)


@import_app.command("prb2")
def import_prb2(
    database: Annotated[Path, typer.Argument(help="PRB v2's local.db (SQLite, not encrypted).")],
    *,
    into: _Into,
    operator: Annotated[
        list[str] | None,
        typer.Option(
            "--operator",
            metavar="PID=ADDRESS",
            help="A pool operator's address (repeatable).",
        ),
    ] = None,
    disabled: _Disabled = "sync_only",
    network: _Network = "khala",
    chain: _Chain = None,
) -> None:
    """Import PRB v2 pools and workers from local.db (operator keys are never read)."""
    state = _disabled_as(disabled)
    try:
        operators = parse_operators(operator or [])
        draft = read_prb2(
            database,
            operators=operators,
            environ=os.environ,
            disabled=state,
            settings=_settings(network, chain),
        )
    except ImportFailed as error:
        raise fail(f"error: {error}") from None
    _check_and_write(draft, into)


@import_app.command("csv")
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV rows: name,endpoint,pool|pid,stake[,state].")],
    *,
    into: _Into,
    owner: Annotated[
        str | None,
        typer.Option("--owner", metavar="ADDRESS", help="Owner address of pools given by pid."),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator", metavar="ADDRESS", help="Address of a proxy signing for the owner."
        ),
    ] = None,
    network: _Network = "khala",
    chain: _Chain = None,
) -> None:
    """Import workers from a CSV; pools by name or pid (resolved in an existing inventory)."""
    existing = _existing(into)
    try:
        draft = read_csv(
            file,
            existing=existing,
            owners=PoolOwners(owner, operator),
            settings=_settings(network, chain),
        )
    except ImportFailed as error:
        raise fail(str(error) if str(error).startswith(str(file)) else f"error: {error}") from None
    _check_and_write(draft, into, existing=existing is not None)


def _existing(into: Path) -> Desired | None:
    if not into.is_dir() or not any(
        p.suffix in (".yaml", ".yml") for p in into.rglob("*") if p.is_file()
    ):
        return None
    try:
        return load_inventory(into)
    except InventoryError as error:
        lines = "\n".join(error.problems)
        raise fail(f"{lines}\nerror: the inventory in {into} is not valid; fix it first") from None


def _check_and_write(draft: Draft, into: Path, *, existing: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="poolkeeper-import-") as scratch:
        root = Path(scratch)
        if existing:
            _copy_yaml(into, root)
        try:
            write_draft(draft, root)
        except ImportFailed as error:
            raise fail(f"error: {error}") from None
        try:
            desired = load_inventory(root)
        except InventoryError as error:
            lines = "\n".join(error.problems)
            raise fail(f"{lines}\nerror: the imported inventory would not be valid") from None
    try:
        written = write_draft(draft, into)
    except ImportFailed as error:
        raise fail(f"error: {error}") from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(
        f"{into}: valid ({len(desired.pools)} pools, {len(desired.workers)} workers, "
        f"{len(desired.accounts)} accounts)"
    )
    for note in draft.notes:
        typer.echo(f"note: {note}")
    if draft.keys:
        typer.echo("\nKeys to provide (never written to the inventory):")
        for key in draft.keys:
            typer.echo(
                f"  {key.account} ({key.address or 'address: from the key'}): {key.why}\n"
                f"    export {key.env}='{key.hint}'\n"
                f"    or put it in a file of mode 0600 and write key: {{file: PATH}} instead"
            )
    typer.echo(f"\nNext: poolkeeper plan {into}")


def _copy_yaml(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            relative = path.relative_to(source)
            if any(part.startswith(".") for part in relative.parts):
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_bytes(path.read_bytes())
