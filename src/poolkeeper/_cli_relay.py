"""``poolkeeper relay [DIR]``: only the relays, for deployments that run them on other hosts.

It reads the same inventory as ``apply``/``run`` and keeps exactly the relays it needs
running (with the executor for registrations and egress), re-observing every few
seconds, until SIGINT/SIGTERM; then it stops every relay cleanly. It plans no pool
actions: those stay with the host that runs ``poolkeeper run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper.errors import PoolkeeperError


async def relay_only_async(directory: Path, interval: float) -> int:
    from poolkeeper._cli_live import load_desired, make_reconciler

    desired = load_desired(directory)
    rec = make_reconciler(
        desired, directory, need_keys=True, progress=lambda m: typer.echo(f"  {m}"), lock="relay"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    typer.echo(f"relaying for {len(desired.workers)} worker(s); Ctrl-C stops")
    shown: dict[str, str] = {}
    try:
        while not stop.is_set():
            try:
                observed = await rec.observe()
                rec.relays.reconcile(rec.relay_plan(observed))
                statuses = rec.relays.statuses()
                counts: dict[str, int] = {}
                for status in statuses.values():
                    counts[status.value] = counts.get(status.value, 0) + 1
                summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
                typer.echo(f"#{observed.head.best_number}: relays {summary}")
                for name, text in sorted(rec.relays.details().items()):
                    if text.startswith("external") and shown.get(name) != text:
                        typer.echo(f"  {name}: {text}")
                    shown[name] = text
            except PoolkeeperError as error:
                typer.echo(f"observation failed: {error}; retrying", err=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await rec.close()
    typer.echo("relays stopped")
    return 0


def relay_command(
    directory: Annotated[Path, typer.Argument(help="Inventory directory.")] = Path("inventory"),
    interval: Annotated[
        float, typer.Option(help="Seconds between observations of the relays' workers.")
    ] = 10.0,
) -> None:
    """Run only the relays of the inventory's workers until Ctrl-C."""
    raise typer.Exit(asyncio.run(relay_only_async(directory, interval)))
