"""The `poolkeeper` command line: argument parsing and rendering only.

Every command delegates to the layers below (inventory, plan, observe, apply, loop);
nothing here decides what to do with a pool. Exit codes follow Terraform's habits:
0 success or no changes, 1 error (usage errors included: click's 2 is remapped in
``main``), 2 changes present (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from poolkeeper._frontends import (
    DEVNET,
    TUI,
    FrontEnd,
    FrontEndMissing,
    FrontEndSpec,
    load_front_end,
)
from poolkeeper._version import __version__
from poolkeeper.cli._accounts import accounts_app
from poolkeeper.cli._common import (
    Colour,
    InventoryDir,
    JsonFlag,
    LogFormatOption,
    ObservedSnapshot,
    Prune,
    QuietOption,
    SummaryGroup,
    Targets,
    VerboseOption,
    fail,
    inventory_problems,
)
from poolkeeper.cli._history import history_command
from poolkeeper.cli._import import import_app
from poolkeeper.cli._journal import journal_app
from poolkeeper.cli._lists import list_command
from poolkeeper.cli._relay import relay_command
from poolkeeper.errors import InventoryError, PoolkeeperError
from poolkeeper.keys import install_log_redaction
from poolkeeper.logs import LogFormat, LogFormatChoice, configure_logging, level_for

app = typer.Typer(
    name="poolkeeper",
    help="Keep Phala mining pools in the state the inventory declares.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals of a crash may hold secret bytes
    rich_markup_mode=None,  # plain help: no <bool>/<path> labels (the sub-apps inherit it)
    cls=SummaryGroup,
)

app.add_typer(accounts_app, cls=SummaryGroup)
app.add_typer(journal_app, cls=SummaryGroup)
app.add_typer(import_app, cls=SummaryGroup)
app.command("list")(list_command)
app.command("relay")(relay_command)
app.command("history")(history_command)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"poolkeeper {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the poolkeeper version and exit.",
            is_eager=True,
            callback=_show_version,
        ),
    ] = False,
) -> None:
    """Keep Phala mining pools in the state the inventory declares."""
    install_log_redaction()


def setup_logging(log_format: str, verbose: int, quiet: int, *, default: int = 20) -> None:
    """Timestamps, levels and secret masking for the commands that log (run, relay, apply)."""
    fmt: LogFormat = "json" if log_format == "json" else "text"
    configure_logging(fmt, level_for(verbose, quiet, default=default))


@app.command()
def version() -> None:
    """Print the poolkeeper version."""
    typer.echo(f"poolkeeper {__version__}")


@app.command()
def validate(
    directory: InventoryDir = Path("inventory"),
    as_json: JsonFlag = False,
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


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), even if it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text)


def _use_colour(choice: bool | None) -> bool:
    if choice is not None:
        return choice
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _plan_and_show(
    directory: Path,
    snapshot: Path | None,
    *,
    as_json: bool,
    targets: list[str],
    prune: bool,
    out: Path | None,
    colour: bool | None,
) -> bool:
    """Load, plan, print (and save); True when the plan has actions. Errors exit 1."""
    from poolkeeper.inventory import load_inventory
    from poolkeeper.observe.snapshot import load_snapshot
    from poolkeeper.plan import PlanPolicy, TargetError, plan_for
    from poolkeeper.render import render_json, render_text

    try:
        policy = PlanPolicy(prune=prune, targets=tuple(targets))
    except TargetError as error:
        raise fail(f"error: {error}") from None
    try:
        desired = load_inventory(directory)
    except InventoryError as error:
        raise fail(inventory_problems(error.problems)) from None
    try:
        if snapshot is not None:
            observed = load_snapshot(snapshot)
        else:
            from poolkeeper.cli._live import observe_live, run_async

            desired, observed = run_async(observe_live(desired, directory))
    except PoolkeeperError as error:
        raise fail(f"error: {error}") from None
    plan = plan_for(desired, observed, policy)
    if snapshot is None and plan.actions:
        from poolkeeper.cli._costs import with_fees
        from poolkeeper.cli._live import run_async

        plan, note = run_async(with_fees(plan, desired))
        if note:
            typer.echo(f"note: {note}", err=True)
    document = render_json(plan)
    if out is not None:
        from poolkeeper.cli._live import saved_plan_document

        document_to_save = json.dumps(
            saved_plan_document(plan, directory, observed), indent=2, sort_keys=True
        )
        try:
            _write_private(out, document_to_save + "\n")
        except OSError as error:
            raise fail(f"error: cannot write {out}: {error.strerror or error}") from None
    if as_json:
        typer.echo(document, nl=False)
    else:
        enabled = _use_colour(colour)
        typer.echo(render_text(plan, colour=enabled), nl=False, color=enabled)
    return plan.has_changes


@app.command()
def plan(
    directory: InventoryDir = Path("inventory"),
    *,
    observed: ObservedSnapshot = None,
    as_json: JsonFlag = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when the plan has changes.")
    ] = False,
    target: Targets = None,
    prune: Prune = False,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", metavar="FILE", help="Also save the plan as JSON here."),
    ] = None,
    colour: Colour = None,
) -> None:
    """Show what poolkeeper would do. Exit 0: no changes, 1: error, 2: changes (with
    --detailed-exitcode)."""
    changes = _plan_and_show(
        directory,
        observed,
        as_json=as_json,
        targets=target or [],
        prune=prune,
        out=out,
        colour=colour,
    )
    if detailed_exitcode and changes:
        raise typer.Exit(2)


@app.command(short_help="Apply the inventory (or a saved plan) after a confirmation.")
def apply(
    source: Annotated[
        Path,
        typer.Argument(help="Inventory directory, or a plan saved with plan -o."),
    ] = Path("inventory"),
    *,
    inventory: Annotated[
        Path,
        typer.Option(
            "--inventory", metavar="DIRECTORY", help="Inventory directory (with a saved plan)."
        ),
    ] = Path("inventory"),
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask.")] = False,
    target: Targets = None,
    prune: Prune = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="Keep reconciling (relays running) up to this many seconds.",
        ),
    ] = 600.0,
    colour: Colour = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = 0,
) -> None:
    """Apply the inventory (or a saved plan): plan, confirm, then reconcile until only waits
    remain or --wait runs out. Relays run in this process meanwhile. Exit 1 if an action failed.
    Background events (relays) are logged to stderr from WARNING (-v: INFO)."""
    from poolkeeper.cli._live import apply_async, run_async
    from poolkeeper.plan import PlanPolicy, TargetError

    setup_logging("text", verbose, quiet, default=30)

    saved: dict[str, object] | None = None
    directory = source
    if source.is_file():
        try:
            saved = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise fail(f"error: cannot read saved plan {source}: {error}") from None
        directory = inventory
    try:
        policy = PlanPolicy(prune=prune, targets=tuple(target or ()))
    except TargetError as error:
        raise fail(f"error: {error}") from None
    code = run_async(
        apply_async(
            directory,
            saved=saved,
            policy=policy,
            auto_approve=auto_approve,
            wait=wait,
            colour=_use_colour(colour),
        )
    )
    raise typer.Exit(code)


@app.command(short_help="The reconcile loop, with relays, until SIGINT/SIGTERM.")
def run(
    directory: InventoryDir = Path("inventory"),
    *,
    prune: Prune = False,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    metrics_addr: Annotated[
        str | None,
        typer.Option(
            "--metrics-addr",
            metavar="HOST:PORT",
            help="Serve Prometheus metrics at HOST:PORT (default: settings.metrics.listen).",
        ),
    ] = None,
    log_format: LogFormatOption = LogFormatChoice.TEXT,
    verbose: VerboseOption = 0,
    quiet: QuietOption = 0,
    ha: Annotated[
        str | None,
        typer.Option(
            "--ha",
            metavar="ETCD",
            help="etcd://HOST:PORT[,HOST:PORT] (etcds:// for TLS, settings.ha.tls): sign and "
            "relay only while owning the shard (docs/ha.md).",
        ),
    ] = None,
    shard: Annotated[
        list[str] | None,
        typer.Option(
            "--shard",
            metavar="SHARD",
            help="Take only this shard of settings.shards (repeat; with --ha each shard is "
            "owned through its own lease).",
        ),
    ] = None,
) -> None:
    """The reconcile loop: observe, plan and act every loop.interval_seconds and whenever
    the inventory changes, with relays running, until SIGINT/SIGTERM (exit 0). A failed
    pass is logged and retried with backoff; it never ends the loop. Logs go to stderr."""
    from poolkeeper.cli._live import run_async
    from poolkeeper.cli._run import run_loop_async
    from poolkeeper.plan import PlanPolicy

    setup_logging(log_format, verbose, quiet)
    from poolkeeper import _memtrace

    _memtrace.start()  # only when POOLKEEPER_TRACEMALLOC is set (docs/benchmarks.md)
    raise typer.Exit(
        run_async(
            run_loop_async(
                directory,
                policy=PlanPolicy(prune=prune),
                once=once,
                metrics_addr=metrics_addr,
                ha=ha,
                shards=tuple(shard or ()),
            )
        )
    )


@app.command()
def status(
    directory: InventoryDir = Path("inventory"),
    *,
    as_json: JsonFlag = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Follow the running `poolkeeper run` (its control API) until Ctrl-C."
        ),
    ] = False,
    ha: Annotated[
        str | None,
        typer.Option(
            "--ha",
            metavar="ETCD",
            help="etcd://HOST:PORT[,HOST:PORT] (etcds:// for TLS): also show who owns which shard.",
        ),
    ] = None,
) -> None:
    """Show the observed state of every worker in the inventory."""
    if watch:
        from poolkeeper.cli._control import watch_status
        from poolkeeper.cli._live import run_async

        try:
            raise typer.Exit(run_async(watch_status(directory, as_json=as_json)))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
    from datetime import UTC, datetime

    from poolkeeper.cli._live import (
        load_desired,
        observe_live,
        render_status_document,
        run_async,
        status_document,
    )
    from poolkeeper.model.conditions import derive_conditions
    from poolkeeper.plan import PlanPolicy, plan_for

    desired = load_desired(directory)
    try:
        desired, observed = run_async(observe_live(desired, directory))
    except PoolkeeperError as error:
        raise fail(f"error: {error}") from None
    conditions = derive_conditions(desired, observed, None, datetime.now(UTC))
    conditions = conditions.model_copy(update={"process": ()})  # one look has no history
    plan = plan_for(desired, observed, PlanPolicy())
    document = status_document(desired, observed, conditions, plan)
    from poolkeeper.app import state_dir_of
    from poolkeeper.cli._ha import ha_status, render_ha_status

    ha_section = ha_status(desired, ha, state_dir_of(desired, directory), directory)
    if ha_section is not None:
        document["ha"] = ha_section
    if as_json:
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        typer.echo(render_status_document(observed, document), nl=False)
        if ha_section is not None:
            typer.echo(render_ha_status(ha_section), nl=False)


@app.command(short_help="Open the terminal UI (a separate front end).")
def tui(
    directory: InventoryDir = Path("inventory"),
    *,
    observed: ObservedSnapshot = None,
    readonly: Annotated[bool, typer.Option("--readonly", help="Never apply.")] = False,
    standalone: Annotated[
        bool,
        typer.Option(
            "--standalone",
            help="Run the loop (and its relays) in the TUI instead of attaching to `run`.",
        ),
    ] = False,
) -> None:
    """Open the terminal UI (a separate front end, found through an entry point): attached
    to the `poolkeeper run` serving the state dir, else observing read-only."""
    run_tui = _front_end(TUI)
    argv = [str(directory)]
    if observed is not None:
        argv += ["--observed", str(observed)]
    if readonly:
        argv.append("--readonly")
    if standalone:
        argv.append("--standalone")
    raise typer.Exit(int(run_tui(argv)))


@app.command(
    "devnet",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def devnet(ctx: typer.Context) -> None:
    """A local devnet (chain + pRuntimes) to try poolkeeper: up, down, chain, pruntime."""
    # The poolkeeper-devnet front end, found through an entry point (poolkeeper._frontends).
    raise typer.Exit(int(_front_end(DEVNET)(list(ctx.args))))


def _front_end(spec: FrontEndSpec) -> FrontEnd:
    try:
        return load_front_end(spec)
    except FrontEndMissing as missing:
        raise fail(str(missing)) from None


def main() -> None:
    """Console-script entry point. Everything the process creates (state dir, journal,
    saved plans, logs) is private to its owner: umask 077."""
    os.umask(0o077)
    # click exits 2 on a usage error; 2 means "changes present" under --detailed-exitcode,
    # so a mistyped option must not look like a plan with changes.
    for cls in typer.BadParameter.__mro__:  # typer's own (vendored) click UsageError
        if cls.__name__ == "UsageError":
            cls.exit_code = 1  # type: ignore[attr-defined]
    app()
