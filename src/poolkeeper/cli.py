"""The `poolkeeper` command line: argument parsing and rendering only.

Every command delegates to the layers below (inventory, plan, observe, apply, loop);
nothing here decides what to do with a pool. Exit codes follow Terraform's habits:
0 success or no changes, 1 error, 2 changes present (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import typer

from poolkeeper._version import __version__

app = typer.Typer(
    name="poolkeeper",
    help="Keep Phala mining pools in the state the inventory declares.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keep Phala mining pools in the state the inventory declares."""


@app.command()
def version() -> None:
    """Print the poolkeeper version."""
    typer.echo(f"poolkeeper {__version__}")


def main() -> None:
    """Console-script entry point."""
    app()
