"""``poolkeeper list workers|accounts|pools``: the inventory joined with what was observed.

The machine list and account list operators used to keep by hand, produced from the
same observation as ``status`` (live) or from a snapshot file. Rows are plain dicts
whose keys are the documented, stable CSV columns (docs/lists.md); JSON carries the
same keys with ``format_version`` 1. Amounts are integer plancks in CSV and JSON, and
PHA in the table. Balance levels use the planner's rule (``model.balances``) and the
alerts are the planner's own, so a list never disagrees with ``plan``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from poolkeeper.cli._common import (
    InventoryDir,
    JsonFlag,
    ObservedSnapshot,
    fail,
    inventory_problems,
)
from poolkeeper.errors import InventoryError, PoolkeeperError
from poolkeeper.inventory import load_inventory
from poolkeeper.model.actions import Plan
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.balances import balance_level, thresholds_of
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.model.phase import phase_of
from poolkeeper.plan import plan_for

LIST_FORMAT_VERSION = 1

WORKER_COLUMNS = (
    "name",
    "pool",
    "endpoint",
    "desired_state",
    "phase",
    "session_state",
    "pubkey",
    "desired_stake_plancks",
    "stake_plancks",
    "initial_score",
    "pruntime_headernum",
    "pruntime_blocknum",
    "chain_best",
    "chain_finalized",
    "error",
    "alerts",
)
ACCOUNT_COLUMNS = (
    "name",
    "role",
    "address",
    "free_plancks",
    "reserved_plancks",
    "nonce",
    "warn_below_plancks",
    "critical_below_plancks",
    "level",
    "top_up_from",
    "top_up_to_plancks",
    "top_up_max_per_day_plancks",
    "topped_up_today_plancks",
    "alerts",
)
POOL_COLUMNS = (
    "name",
    "pid",
    "on_chain",
    "owner",
    "owner_address",
    "operator",
    "proxied",
    "proxy_on_chain",
    "workers",
    "cd_workers",
    "declared_workers",
    "free_stake_plancks",
    "cap_plancks",
    "commission_permill",
    "alerts",
)
PLANCK_COLUMNS = frozenset(
    c for c in (*WORKER_COLUMNS, *ACCOUNT_COLUMNS, *POOL_COLUMNS) if c.endswith("_plancks")
)
PROXY_TYPES_FOR_POOLS = frozenset({"StakePoolManager", "Any"})

Row = dict[str, Any]


def _alerts_by_target(plan: Plan) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for alert in plan.alerts:
        found.setdefault(alert.target, []).append(f"{alert.severity.value}: {alert.message}")
    return found


def _pubkey(text: str | None) -> str | None:
    if not text:
        return None
    lowered = text.strip().lower()
    return lowered.removeprefix("0x")


def worker_rows(desired: Desired, observed: Observed, plan: Plan) -> list[Row]:
    """One row per inventory worker, in inventory order."""
    alerts = _alerts_by_target(plan)
    rows: list[Row] = []
    for worker in desired.workers:
        prt = observed.pruntimes.get(worker.endpoint)
        info = prt.info if prt else None
        pubkey = _pubkey(worker.pubkey) or _pubkey(info.public_key if info else None)
        chain = observed.chain_workers.get(pubkey) if pubkey else None
        rows.append(
            {
                "name": worker.name,
                "pool": worker.pool,
                "endpoint": worker.endpoint,
                "desired_state": worker.state.value,
                "phase": phase_of(prt, chain, observed.head).value,
                "session_state": chain.session_state.value
                if chain and chain.session_state
                else None,
                "pubkey": pubkey,
                "desired_stake_plancks": desired.stake_of(worker),
                "stake_plancks": chain.stake if chain else None,
                "initial_score": chain.initial_score if chain else None,
                "pruntime_headernum": info.headernum if info else None,
                "pruntime_blocknum": info.blocknum if info else None,
                "chain_best": observed.head.best_number,
                "chain_finalized": observed.head.finalized_number,
                "error": prt.error if prt else "not observed",
                "alerts": alerts.get(f"worker/{worker.name}", []),
            }
        )
    return rows


def account_rows(desired: Desired, observed: Observed, plan: Plan) -> list[Row]:
    """One row per inventory account. Level ``unknown``: no address to observe yet."""
    alerts = _alerts_by_target(plan)
    rows: list[Row] = []
    for account in desired.accounts:
        warn, critical = thresholds_of(desired.settings, account)
        seen = observed.accounts.get(account.address) if account.address else None
        # Like the planner: an address the chain does not hold has a zero balance.
        free = (seen.free if seen else 0) if account.address else None
        top_up = account.top_up
        rows.append(
            {
                "name": account.name,
                "role": account.role.value,
                "address": account.address,
                "free_plancks": free,
                "reserved_plancks": (seen.reserved if seen else 0) if account.address else None,
                "nonce": (seen.nonce if seen else 0) if account.address else None,
                "warn_below_plancks": warn,
                "critical_below_plancks": critical,
                "level": balance_level(free, warn, critical).value
                if free is not None
                else "unknown",
                "top_up_from": top_up.from_account if top_up else None,
                "top_up_to_plancks": top_up.to if top_up else None,
                "top_up_max_per_day_plancks": top_up.max_per_day if top_up else None,
                "topped_up_today_plancks": observed.topped_up_today.get(account.address, 0)
                if top_up and account.address
                else None,
                "alerts": alerts.get(f"account/{account.name}", []),
            }
        )
    return rows


def pool_rows(desired: Desired, observed: Observed, plan: Plan) -> list[Row]:
    """One row per inventory pool; chain columns are empty while the pool is not on chain."""
    alerts = _alerts_by_target(plan)
    addresses = {a.name: a.address for a in desired.accounts}
    declared: dict[str, int] = {}
    for worker in desired.workers:
        if worker.pool is not None:
            declared[worker.pool] = declared.get(worker.pool, 0) + 1
    grants = {
        (g.real, g.delegate) for g in observed.proxies if g.proxy_type in PROXY_TYPES_FOR_POOLS
    }
    rows: list[Row] = []
    for pool in desired.pools:
        chain = observed.pools.get(pool.pid) if pool.pid is not None else None
        owner_address = chain.owner if chain else addresses.get(pool.owner)
        signer_address = addresses.get(pool.signer)
        proxy_on_chain: bool | None = None
        if pool.proxied and owner_address and signer_address:
            proxy_on_chain = (owner_address, signer_address) in grants
        rows.append(
            {
                "name": pool.name,
                "pid": pool.pid,
                "on_chain": chain is not None,
                "owner": pool.owner,
                "owner_address": owner_address,
                "operator": pool.signer,
                "proxied": pool.proxied,
                "proxy_on_chain": proxy_on_chain,
                "workers": len(chain.workers) if chain else None,
                "cd_workers": len(chain.cd_workers) if chain else None,
                "declared_workers": declared.get(pool.name, 0),
                "free_stake_plancks": chain.free_stake if chain else None,
                "cap_plancks": chain.cap if chain else pool.cap,
                "commission_permill": chain.commission if chain else None,
                "alerts": alerts.get(f"pool/{pool.name}", []),
            }
        )
    return rows


class ListKind(StrEnum):
    WORKERS = "workers"
    ACCOUNTS = "accounts"
    POOLS = "pools"


class ListFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def output_format_of(as_json: bool, output_format: ListFormat) -> ListFormat:
    """``--json`` (the convention of every command) or ``--format`` (kept as its alias)."""
    if as_json and output_format is ListFormat.CSV:
        raise fail("error: --json and --format csv ask for two formats: give one")
    return ListFormat.JSON if as_json else output_format


BUILDERS: dict[ListKind, tuple[Callable[[Desired, Observed, Plan], list[Row]], Sequence[str]]] = {
    ListKind.WORKERS: (worker_rows, WORKER_COLUMNS),
    ListKind.ACCOUNTS: (account_rows, ACCOUNT_COLUMNS),
    ListKind.POOLS: (pool_rows, POOL_COLUMNS),
}


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def render_csv(rows: list[Row], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in columns])
    return buffer.getvalue()


def render_json(kind: ListKind, rows: list[Row], observed: Observed, source: str) -> str:
    document = {
        "format_version": LIST_FORMAT_VERSION,
        "kind": kind.value,
        "observed": {
            "source": source,
            "read_at": observed.read_at.isoformat().replace("+00:00", "Z"),
            "best_number": observed.head.best_number,
            "finalized_number": observed.head.finalized_number,
        },
        kind.value: rows,
    }
    return json.dumps(document, indent=2) + "\n"


def _table_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in PLANCK_COLUMNS:
        return format_pha(int(value))
    if column == "commission_permill":
        return f"{int(value) / 10_000:g}%"
    if column == "alerts":
        return str(len(value)) if value else "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


TABLE_HEADERS = {c: c.removesuffix("_plancks") for c in PLANCK_COLUMNS} | {
    "commission_permill": "commission",
    "pruntime_headernum": "headernum",
    "pruntime_blocknum": "blocknum",
}


def render_table(
    kind: ListKind, rows: list[Row], columns: Sequence[str], observed: Observed
) -> str:
    """Plain aligned columns (fast for 10,000 rows; no box drawing to trip up grep)."""
    head = observed.head
    shown = [c for c in columns if c not in ("chain_best", "chain_finalized", "pubkey")]
    title = (
        f"{kind.value.capitalize()}: {len(rows)} "
        f"(chain best #{head.best_number}, finalized #{head.finalized_number})"
    )
    return render_columns(title, rows, shown)


def render_columns(title: str, rows: list[Row], shown: Sequence[str]) -> str:
    """``title``, then ``shown`` columns aligned (PHA amounts), then the rows' alerts.

    Every table of accounts, workers or pools (``list``, ``accounts list``) is drawn here,
    so the same column reads the same in each."""
    headers = [TABLE_HEADERS.get(c, c).upper() for c in shown]
    cells = [[_table_cell(c, row[c]) for c in shown] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = [
        title,
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
    ]
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )
    notes = [f"  {row['name']}: {text}" for row in rows for text in row.get("alerts", ())]
    if notes:
        lines.append("Alerts:")
        lines.extend(notes)
    return "\n".join(lines) + "\n"


def _load(directory: Path) -> Desired:
    try:
        return load_inventory(directory)
    except InventoryError as error:
        raise fail(inventory_problems(error.problems)) from None


def with_derived_addresses(desired: Desired, directory: Path) -> Desired:
    """Accounts declared by derivation label only get their address in memory, as ``plan``
    and ``apply`` do, when the master secret is available; otherwise they stay unknown."""
    if not any(a.address is None and a.derivation for a in desired.accounts):
        return desired
    from poolkeeper.errors import SecretError
    from poolkeeper.keys import KeyRing, load_master_secret

    base = directory if directory.is_dir() else directory.parent
    try:
        keys = KeyRing(desired, load_master_secret(desired.settings.secrets, base_dir=base))
    except SecretError as error:
        typer.echo(f"warning: derived addresses unknown: {error}", err=True)
        return desired
    accounts = tuple(
        a.model_copy(update={"address": keys.address(a.name)})
        if a.address is None and a.derivation and keys.has(a.name)
        else a
        for a in desired.accounts
    )
    return desired.model_copy(update={"accounts": accounts})


def _observe(
    desired: Desired, directory: Path, snapshot: Path | None
) -> tuple[Desired, Observed, str]:
    """The observation, and the inventory as live commands see it (created pools' pids)."""
    try:
        if snapshot is not None:
            from poolkeeper.observe.snapshot import load_snapshot

            return desired, load_snapshot(snapshot), f"snapshot {snapshot.as_posix()}"
        from poolkeeper.cli._live import observe_live, run_async

        live: tuple[Desired, Observed] = run_async(observe_live(desired, directory))
        return live[0], live[1], "live"
    except PoolkeeperError as error:
        raise fail(f"error: {error}") from None


def list_command(
    kind: Annotated[ListKind, typer.Argument(help="What to list.")],
    directory: InventoryDir = Path("inventory"),
    *,
    as_json: JsonFlag = False,
    output_format: Annotated[
        ListFormat,
        typer.Option("--format", help="table, csv (stable columns) or json (as --json)."),
    ] = ListFormat.TABLE,
    snapshot: ObservedSnapshot = None,
) -> None:
    """List workers, accounts or pools with their observed state (live, or from a snapshot)."""
    output_format = output_format_of(as_json, output_format)
    desired = with_derived_addresses(_load(directory), directory)
    desired, observed, source = _observe(desired, directory, snapshot)
    build, columns = BUILDERS[kind]
    rows = build(desired, observed, plan_for(desired, observed))
    if output_format is ListFormat.CSV:
        text = render_csv(rows, columns)
    elif output_format is ListFormat.JSON:
        text = render_json(kind, rows, observed, source)
    else:
        text = render_table(kind, rows, columns, observed)
    typer.echo(text, nl=False)
