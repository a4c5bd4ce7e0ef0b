"""The `poolkeeper` command line: argument parsing and rendering only.

Every command delegates to the layers below (inventory, plan, observe, apply, loop);
nothing here decides what to do with a pool. Exit codes follow Terraform's habits:
0 success or no changes, 1 error, 2 changes present (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper._cli_accounts import accounts_app
from poolkeeper._version import __version__
from poolkeeper.errors import InventoryError

app = typer.Typer(
    name="poolkeeper",
    help="Keep Phala mining pools in the state the inventory declares.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(accounts_app)


@app.callback()
def _root() -> None:
    """Keep Phala mining pools in the state the inventory declares."""


@app.command()
def version() -> None:
    """Print the poolkeeper version."""
    typer.echo(f"poolkeeper {__version__}")


@app.command()
def validate(
    directory: Annotated[Path, typer.Argument(help="Inventory directory.")] = Path("inventory"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check the inventory and report every problem at once (exit 1 if any)."""
    from poolkeeper.inventory import load_inventory

    shown = directory.as_posix().rstrip("/") + ("/" if directory.is_dir() else "")
    try:
        desired = load_inventory(directory)
    except InventoryError as error:
        if as_json:
            problems = [
                {"file": f, "line": line, "col": col, "message": text}
                for f, line, col, text in error.located
            ]
            report = {"format_version": 1, "inventory": shown, "valid": False}
            typer.echo(json.dumps({**report, "problems": problems}, indent=2))
        else:
            for line_text in error.problems:
                typer.echo(line_text)
            count = len(error.problems)
            typer.echo(f"{count} problem{'s' if count != 1 else ''}")
        raise typer.Exit(1) from None
    counts = {
        "pools": len(desired.pools),
        "workers": len(desired.workers),
        "accounts": len(desired.accounts),
    }
    if as_json:
        report = {"format_version": 1, "inventory": shown, "valid": True, "counts": counts}
        typer.echo(json.dumps({**report, "problems": []}, indent=2))
        return
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    typer.echo(f"{shown}: valid ({summary})")


def main() -> None:
    """Console-script entry point."""
    app()
