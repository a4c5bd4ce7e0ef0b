"""``poolkeeper accounts ...``: generate addresses, create the master secret, list accounts.

Argument parsing and rendering only; the work is in ``poolkeeper.keys``. Kept apart
from the root commands (``cli/__init__.py``) so the accounts commands can change
without touching the others.
Nothing here ever prints a secret: the mnemonic stays inside ``Mnemonic`` and is
revealed only to the derivation and to the one file ``new-secret`` writes.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from poolkeeper.cli._common import JsonFlag, fail
from poolkeeper.cli._lists import ListFormat, output_format_of, render_columns, render_csv
from poolkeeper.errors import DerivationError, InventoryError, SecretError, StateDirError
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import (
    Mnemonic,
    derive_keys,
    generate_addresses,
    install_log_redaction,
    load_master_secret,
)
from poolkeeper.model.balances import thresholds_of
from poolkeeper.model.desired import AccountSpec, Desired
from poolkeeper.model.ss58 import AddressError, decode_address

accounts_app = typer.Typer(
    name="accounts",
    help="Derived accounts: fill in addresses, create the master secret, list accounts.",
    no_args_is_help=True,
    add_completion=False,
)

InventoryDir = Annotated[
    Path, typer.Argument(help="Inventory directory (or a single YAML file).", show_default=True)
]

BALANCES_NOTE = (
    "balances are not observed yet by this command: it lists the declared accounts and "
    "thresholds only (`poolkeeper list accounts` shows balances and alert levels)"
)


@accounts_app.callback()
def _accounts() -> None:
    """Derived accounts: fill in addresses, create the master secret, list accounts."""
    install_log_redaction()


def _load_or_exit(directory: Path) -> Desired:
    """The validated inventory; an invalid one is reported and the command stops (exit 1)."""
    try:
        return load_inventory(directory)
    except InventoryError as exc:
        raise fail(f"error: {exc}") from None


def _base_dir(directory: Path) -> Path:
    return directory if directory.is_dir() else directory.parent


def _lock_state_dir(directory: Path, state_dir: str) -> None:
    """Writing the inventory while another poolkeeper signs from it is refused."""
    from poolkeeper.apply.statedir import StateDirLock

    path = Path(state_dir)
    if not path.is_absolute():
        path = directory.parent / path  # as `apply` resolves it
    try:
        StateDirLock.acquire(path, "accounts generate", notice=lambda m: typer.echo(m, err=True))
    except StateDirError as exc:
        raise fail(f"error: {exc}") from None


@accounts_app.command()
def generate(
    directory: InventoryDir = Path("inventory"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Verify only; write nothing; exit 2 if addresses are missing."
        ),
    ] = False,
) -> None:
    """Derive every account with a `derivation` and write its missing `address:` line.

    Declared addresses are checked against their derivation; any mismatch is an error
    and nothing is written. Comments, order and formatting of the files are kept.
    """
    desired = _load_or_exit(directory)
    settings = desired.settings
    if not check:
        _lock_state_dir(directory, settings.state_dir)
    try:
        mnemonic = load_master_secret(settings.secrets, base_dir=_base_dir(directory))
        result = generate_addresses(
            directory,
            mnemonic,
            desired.accounts,
            ss58_prefix=settings.ss58_prefix,
            write=not check,
        )
    except (SecretError, DerivationError) as exc:
        raise fail(f"error: {exc}") from None
    verb = "missing" if check else "wrote"
    for change in result.written:
        typer.echo(
            f"+ {change.file}:{change.line}: account {change.account}: "
            f"{verb} address: {change.address}"
        )
    typer.echo(
        f"{'Missing' if check else 'Wrote'} {len(result.written)} address"
        f"{'es' if len(result.written) != 1 else ''}; "
        f"{len(result.verified)} declared address"
        f"{'es' if len(result.verified) != 1 else ''} match their derivation."
    )
    if check and result.written:
        raise typer.Exit(2)


def _default_secret_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(config) / "poolkeeper" / "mnemonic"


def _create_secret_file(path: Path, mnemonic: Mnemonic) -> None:
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise SecretError(
            f"{path} already exists; refusing to overwrite a secret "
            f"(choose another --file, or move the old one away yourself)"
        ) from None
    except OSError as exc:
        raise SecretError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (mnemonic.reveal() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@accounts_app.command("new-secret")
def new_secret(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="Where to write the mnemonic (default: $XDG_CONFIG_HOME/poolkeeper/mnemonic).",
        ),
    ] = None,
) -> None:
    """Create a fresh 24-word master mnemonic in a new 0600 file. Never prints the words."""
    path = file if file is not None else _default_secret_file()
    try:
        _create_secret_file(path, Mnemonic.generate(24))
    except SecretError as exc:
        raise fail(f"error: {exc}") from None
    typer.echo(str(path))
    typer.echo(
        f"warning: {path} holds the new master secret (mode 0600). Back it up offline now: "
        f"every derived account depends on it and it cannot be recovered. Point the "
        f"inventory at it with settings.secrets.file, then run `poolkeeper accounts generate`.",
        err=True,
    )


class AddressStatus(StrEnum):
    DECLARED = "declared"
    """Written in the inventory; not checked (no derivation, or no master secret)."""
    VERIFIED = "verified"
    """Written in the inventory and equal to its derivation."""
    MISMATCH = "mismatch"
    """Written in the inventory but not what its derivation gives."""
    DERIVED = "derived"
    """Not written yet; derived now (run `accounts generate` to write it)."""
    UNKNOWN = "unknown"
    """Not written, and not derivable now (no master secret, or no derivation)."""


@dataclass(frozen=True)
class _Row:
    spec: AccountSpec
    address: str | None
    status: AddressStatus
    warn_below: int
    critical_below: int


ACCOUNTS_LIST_FORMAT_VERSION = 2
"""2: rows keyed by the CSV columns (``warn_below_plancks``...), as ``list accounts``."""

CSV_COLUMNS = (
    "name",
    "role",
    "address",
    "address_status",
    "derivation",
    "warn_below_plancks",
    "critical_below_plancks",
    "top_up_from",
)


def _rows(desired: Desired, mnemonic: Mnemonic | None) -> list[_Row]:
    labels = [a.derivation for a in desired.accounts if a.derivation]
    prefix = desired.settings.ss58_prefix
    keys = derive_keys(mnemonic, sorted(set(labels)), prefix) if mnemonic and labels else {}
    rows = []
    for spec in desired.accounts:
        key = keys.get(spec.derivation) if spec.derivation else None
        address = spec.address
        if address is None:
            address = key.address if key else None
            status = AddressStatus.DERIVED if key else AddressStatus.UNKNOWN
        elif key is None:
            status = AddressStatus.DECLARED
        else:
            try:
                same = decode_address(address)[1] == key.public_key
            except AddressError:
                same = False
            status = AddressStatus.VERIFIED if same else AddressStatus.MISMATCH
        warn_below, critical_below = thresholds_of(desired.settings, spec)
        rows.append(
            _Row(
                spec=spec,
                address=address,
                status=status,
                warn_below=warn_below,
                critical_below=critical_below,
            )
        )
    return rows


def _row_document(row: _Row) -> dict[str, Any]:
    """One account as a row keyed by the CSV columns (as ``list accounts`` rows are)."""
    return {
        "name": row.spec.name,
        "role": row.spec.role.value,
        "address": row.address,
        "address_status": row.status.value,
        "derivation": row.spec.derivation,
        "warn_below_plancks": row.warn_below,
        "critical_below_plancks": row.critical_below,
        "top_up_from": row.spec.top_up.from_account if row.spec.top_up else None,
    }


def _render_table(rows: list[_Row]) -> str:
    title = f"Accounts: {len(rows)} (declared in the inventory)"
    table = render_columns(title, [_row_document(r) for r in rows], CSV_COLUMNS)
    return f"# {BALANCES_NOTE}\n{table}"


def _render_csv(rows: list[_Row]) -> str:
    return render_csv([_row_document(r) for r in rows], CSV_COLUMNS)


def _render_json(rows: list[_Row]) -> str:
    """``list accounts``'s document shape (``kind``, rows keyed by the CSV columns), with
    ``balances_observed: false`` in place of ``observed``, plus each row's ``top_up``
    and ``source``."""
    document = {
        "format_version": ACCOUNTS_LIST_FORMAT_VERSION,
        "kind": "accounts",
        "balances_observed": False,
        "note": BALANCES_NOTE,
        "accounts": [
            {
                **_row_document(row),
                "top_up": row.spec.top_up.model_dump(by_alias=True) if row.spec.top_up else None,
                "source": str(row.spec.source) if row.spec.source else None,
            }
            for row in rows
        ],
    }
    return json.dumps(document, indent=2) + "\n"


@accounts_app.command("list")
def list_accounts(
    directory: InventoryDir = Path("inventory"),
    as_json: JsonFlag = False,
    output_format: Annotated[
        ListFormat,
        typer.Option("--format", help="table, csv (stable columns) or json (as --json)."),
    ] = ListFormat.TABLE,
) -> None:
    """The declared accounts: role, address (derived when not written yet), thresholds.

    Offline (no chain needed); `poolkeeper list accounts` adds balances and alert levels.
    """
    output_format = output_format_of(as_json, output_format)
    desired = _load_or_exit(directory)
    mnemonic: Mnemonic | None = None
    if any(a.derivation for a in desired.accounts):
        try:
            mnemonic = load_master_secret(desired.settings.secrets, base_dir=_base_dir(directory))
        except SecretError as exc:
            typer.echo(f"warning: addresses are not derived or checked: {exc}", err=True)
    rows = _rows(desired, mnemonic)
    render = {
        ListFormat.TABLE: _render_table,
        ListFormat.CSV: _render_csv,
        ListFormat.JSON: _render_json,
    }[output_format]
    if output_format is ListFormat.CSV:
        typer.echo(f"note: {BALANCES_NOTE}", err=True)
    sys.stdout.write(render(rows))
