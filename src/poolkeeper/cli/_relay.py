"""``poolkeeper relay [DIR]``: only the relays, for deployments that run them on other hosts.

It reads the same inventory as ``apply``/``run`` and keeps exactly the relays it needs
running (with the executor for registrations and egress), re-observing every few
seconds, until SIGINT/SIGTERM; then it stops every relay cleanly. It plans no pool
actions: those stay with the host that runs ``poolkeeper run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper._eventloop import run as run_on_event_loop
from poolkeeper.cli._common import InventoryDir, LogFormatOption, QuietOption, VerboseOption
from poolkeeper.errors import PoolkeeperError
from poolkeeper.logs import LogFormatChoice, configure_logging, level_for

_log = logging.getLogger("poolkeeper.relay")


async def relay_only_async(directory: Path, interval: float) -> int:
    from poolkeeper.cli._live import load_desired, make_reconciler

    desired = load_desired(directory)
    rec = make_reconciler(
        desired,
        directory,
        need_keys=True,
        progress=lambda m: _log.info(m, extra={"event": "progress"}),
        lock="relay",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _log.info(
        "relaying for %d worker(s); Ctrl-C stops",
        len(desired.workers),
        extra={"event": "relay.start"},
    )
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
                _log.info(
                    "#%s: relays %s",
                    observed.head.best_number,
                    summary,
                    extra={"event": "relay.summary"},
                )
                for name, text in sorted(rec.relays.details().items()):
                    if text.startswith("external") and shown.get(name) != text:
                        _log.info(
                            "%s: %s", name, text, extra={"event": "relay.detail", "worker": name}
                        )
                    shown[name] = text
            except PoolkeeperError as error:
                _log.warning(
                    "observation failed: %s; retrying", error, extra={"event": "observe.error"}
                )
            except Exception:
                _log.exception("observation failed; retrying", extra={"event": "observe.error"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await rec.close()
    _log.info("relays stopped", extra={"event": "relay.stopped"})
    return 0


def relay_command(
    directory: InventoryDir = Path("inventory"),
    interval: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="Seconds between observations of the relays' workers."
        ),
    ] = 10.0,
    log_format: LogFormatOption = LogFormatChoice.TEXT,
    verbose: VerboseOption = 0,
    quiet: QuietOption = 0,
) -> None:
    """Run only the relays of the inventory's workers until Ctrl-C."""
    configure_logging("json" if log_format == "json" else "text", level_for(verbose, quiet))
    raise typer.Exit(run_on_event_loop(relay_only_async(directory, interval)))
