"""CLI commands that talk to the live chain and pRuntimes: live ``plan``, ``apply``, ``status``.

Kept apart from ``cli/__init__.py`` (offline commands) so the argument parsing stays thin:
everything here builds a ``Reconciler`` and renders what it returns.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from poolkeeper import app
from poolkeeper._eventloop import run as run_on_event_loop
from poolkeeper.app import inventory_digest
from poolkeeper.apply.executor import ActionResult, AuditSink
from poolkeeper.apply.journal import Journal
from poolkeeper.apply.statedir import StateDirLock
from poolkeeper.cli._common import fail, inventory_problems
from poolkeeper.errors import (
    InventoryError,
    KeysUnusable,
    PoolkeeperError,
    SecretError,
    StalePlan,
    StateDirError,
)
from poolkeeper.inventory import load_inventory
from poolkeeper.loop import LOCAL_KINDS, PassGate, PassResult, Reconciler
from poolkeeper.model.actions import DESTRUCTIVE_KINDS, Plan
from poolkeeper.model.amounts import format_pha
from poolkeeper.model.conditions import Conditions, condition_document, worker_joins
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.model.phase import phase_of
from poolkeeper.model.runway import runways
from poolkeeper.plan import PlanPolicy, plan_for
from poolkeeper.render import plan_document, plan_from_document, render_text

SAVED_PLAN_VERSION = 1
RELAY_JOB_PREFIXES = ("egress:", "register_worker:")


def load_desired(directory: Path) -> Desired:
    try:
        return load_inventory(directory)
    except InventoryError as error:
        raise fail(inventory_problems(error.problems)) from None


def observed_digest(observed: Observed) -> str:
    data = observed.model_dump(mode="json", exclude={"read_at"})
    for p in data.get("pruntimes", {}).values():
        p.pop("read_at", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _notice(message: str) -> None:
    typer.echo(message, err=True)


def lock_state_dir(state_dir: Path, command: str) -> StateDirLock:
    """Take the one-writer lock for this process's life; refuse (exit 1) when held."""
    try:
        return app.lock_state_dir(state_dir, command, notice=_notice)
    except StateDirError as error:
        raise fail(f"error: {error}") from None


def make_reconciler(
    desired: Desired,
    directory: Path,
    *,
    need_keys: bool,
    progress: Callable[[str], None] | None,
    lock: str | None = None,
    also_audit: AuditSink | None = None,
    ha: Callable[[Path], tuple[Journal, PassGate]] | None = None,
) -> Reconciler:
    """``poolkeeper.app.make_reconciler``, its faults said on stderr (exit 1)."""
    try:
        return app.make_reconciler(
            desired,
            directory,
            need_keys=need_keys,
            progress=progress,
            lock=lock,
            also_audit=also_audit,
            ha=ha,
            notice=_notice,
        )
    except KeysUnusable as error:
        raise fail("\n".join(f"error: {p}" for p in error.problems)) from None
    except (SecretError, StateDirError) as error:
        raise fail(f"error: {error}") from None


async def observe_live(desired: Desired, directory: Path) -> tuple[Desired, Observed]:
    """The observed world, and the inventory with the addresses derived in memory when the
    master secret is at hand (as ``apply`` plans with them: no phantom derive actions)."""
    rec = make_reconciler(desired, directory, need_keys=False, progress=None)
    try:
        return rec.desired, await rec.observe()
    finally:
        await rec.close()


def saved_plan_document(plan: Plan, directory: Path, observed: Observed) -> dict[str, Any]:
    return {
        "format_version": SAVED_PLAN_VERSION,
        "inventory_digest": inventory_digest(directory),
        "observed_digest": observed_digest(observed),
        "block": observed.head.best_number,
        "plan": plan_document(plan),
    }


def check_saved_plan(saved: dict[str, Any], directory: Path, fresh: Plan) -> Plan:
    """The saved plan, if it still applies; ``StalePlan`` saying why otherwise."""
    if saved.get("format_version") != SAVED_PLAN_VERSION:
        raise StalePlan(f"unsupported saved-plan format_version {saved.get('format_version')!r}")
    if saved.get("inventory_digest") != inventory_digest(directory):
        raise StalePlan("the inventory changed since the plan was made: plan again")
    plan = plan_from_document(saved["plan"])
    now = {a.id: a for a in fresh.actions}
    # Local actions (relays, derivations) are redone by every run from what it observes;
    # only the chain actions are the operator's approved changes.
    gone = []
    for action in plan.actions:
        if action.kind in LOCAL_KINDS:
            continue
        fresh_action = now.get(action.id)
        if fresh_action is None:
            why = next((a.message for a in fresh.alerts if a.target == action.target), None)
            gone.append(f"{action.id} (no longer planned{': ' + why if why else ''})")
        elif differences := action.effect_differences(fresh_action):
            gone.append(f"{action.id} ({', '.join(differences)})")
    if gone:
        raise StalePlan(
            "the chain moved since the plan was made; these actions no longer apply as saved: "
            + ", ".join(gone)
        )
    return plan


def confirm(plan: Plan, auto_approve: bool) -> None:
    if auto_approve or not plan.actions:
        return
    destructive = [a for a in plan.actions if a.kind in DESTRUCTIVE_KINDS]
    if destructive:
        typer.echo("Destructive actions in this plan:")
        for a in destructive:
            typer.echo(f"  - {a.target}: {a.kind.value} ({a.reason})")
    if not sys.stdin.isatty():
        raise fail("error: refusing to apply without confirmation: pass --auto-approve")
    if not typer.confirm("Apply these actions?", default=False):
        raise fail("Apply cancelled.")


def result_table(results: dict[str, ActionResult]) -> str:
    if not results:
        return "No chain actions were executed.\n"
    width = max(len(k) for k in results)
    lines = [f"{'action':<{width}}  result"]
    for action_id, r in sorted(results.items()):
        verdict = "ok" if r.ok else f"FAILED: {r.error}"
        where = f" (block {r.block_number})" if r.ok and r.block_number is not None else ""
        lines.append(f"{action_id:<{width}}  {verdict}{where}")
    return "\n".join(lines) + "\n"


async def apply_async(
    directory: Path,
    *,
    saved: dict[str, Any] | None,
    policy: PlanPolicy,
    auto_approve: bool,
    wait: float,
    colour: bool,
) -> int:
    desired = load_desired(directory)
    rec = make_reconciler(
        desired, directory, need_keys=True, progress=lambda m: typer.echo(f"  {m}"), lock="apply"
    )
    final: dict[str, ActionResult] = {}
    try:
        for r in await rec.recover():
            typer.echo(f"recovered from the journal: {r.action_id}: {'ok' if r.ok else r.error}")
            # Relay work (egress, registration) left by a crash is redone by the relays
            # from what the chain says (a superseded message fails harmlessly): it is
            # reported, but only plan actions decide the result.
            if not r.action_id.startswith(RELAY_JOB_PREFIXES):
                final[r.action_id] = r
        first = await rec.reconcile_once(policy, execute=False)
        plan = first.plan
        if saved is not None:
            try:
                plan = check_saved_plan(saved, directory, first.plan)
            except StalePlan as error:
                raise fail(f"error: {error}") from None
            saved_ids = {a.id for a in plan.actions}
            extra = [
                a.id
                for a in first.plan.actions
                if a.kind not in LOCAL_KINDS and a.id not in saved_ids
            ]
            if extra:
                typer.echo(
                    "note: not in the saved plan, so not applied now (plan again for them): "
                    + ", ".join(extra)
                )
        if plan.actions:
            from poolkeeper.cli._costs import with_fees

            plan, note = await with_fees(plan, rec.desired)
            if note:
                typer.echo(f"note: {note}", err=True)
        typer.echo(render_text(plan, colour=colour), nl=False)
        confirm(plan, auto_approve)

        def on_pass(p: PassResult) -> None:
            for r in p.resolved:
                typer.echo(f"  resolved from the journal: {r.action_id}: {_verdict(r)}")
                if not r.action_id.startswith(RELAY_JOB_PREFIXES):
                    final[r.action_id] = r
            if p.in_flight:
                typer.echo(f"  still in flight (not sent again): {', '.join(p.in_flight)}")
            for r in p.results:
                final[r.action_id] = r
                mark = "done" if r.ok else f"failed: {r.error}"
                typer.echo(f"  {r.action_id}: {mark}")
            if p.started_relays:
                typer.echo(f"  relays started: {', '.join(p.started_relays)}")

        if saved is not None:
            from poolkeeper.cli._saved import complete_saved

            outcome = await complete_saved(rec, policy, plan, wait=wait, on_pass=on_pass)
            for what, ids in (
                ("no longer planned (plan again)", outcome.not_coming),
                (f"not due within --wait {wait:g}s", outcome.still_pending),
                (f"still waiting after --wait {wait:g}s", outcome.still_waiting),
            ):
                if ids:
                    typer.echo(f"note: saved plan: {what}: {', '.join(ids)}")
        else:
            await rec.converge(policy, timeout=wait, on_pass=on_pass)
        typer.echo("\n" + result_table(final), nl=False)
        unknown = sorted(
            i for i in rec.journal.pending_action_ids() if not i.startswith(RELAY_JOB_PREFIXES)
        )
        if unknown:
            typer.echo(
                "still in flight (an extrinsic that can still be included carries them; "
                "the next apply or run decides): " + ", ".join(unknown)
            )
        last = plan_for(rec.desired, (await rec.observe()), policy)
        typer.echo("\nNow:\n" + render_text(last, colour=colour), nl=False)
    except PoolkeeperError as error:
        raise fail(f"error: {error}") from None
    finally:
        await rec.close()
    return 0 if all(r.ok for r in final.values()) and not unknown else 1


def status_rows(
    desired: Desired, observed: Observed, conditions: Conditions | None = None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    joins = worker_joins(desired, observed)  # the pass's conditions joined them already
    for worker in desired.workers:
        prt, pubkey, chain = joins[worker.name]
        info = prt.info if prt else None
        own = conditions.worker(worker.name) if conditions else {}
        rows.append(
            {
                "worker": worker.name,
                "pubkey": pubkey,
                "pool": worker.pool,
                "desired": worker.state.value,
                "phase": phase_of(prt, chain, observed.head).value,
                "session_state": chain.session_state.value
                if chain and chain.session_state
                else None,
                "stake": chain.stake if chain else None,
                "initial_score": chain.initial_score if chain else None,
                "blocknum": info.blocknum if info else None,
                "headernum": info.headernum if info else None,
                "relay": observed.relay_details.get(worker.name)
                or _relay_value(observed, worker.name),
                "error": prt.error if prt else None,
                "conditions": {t: condition_document(c) for t, c in own.items()},
            }
        )
    return rows


def account_rows(desired: Desired, observed: Observed) -> list[dict[str, Any]]:
    """Every inventory account with its free balance and level against the thresholds."""
    settings = desired.settings
    rows: list[dict[str, Any]] = []
    runway = runways(desired, observed)
    for account in desired.accounts:
        seen = observed.accounts.get(account.address) if account.address else None
        own = runway.get(account.name)
        free = seen.free if seen else None
        level = None
        if free is not None:
            level = (
                "critical"
                if free < settings.critical_below
                else "warn"
                if free < settings.warn_below
                else "ok"
            )
        rows.append(
            {
                "account": account.name,
                "role": account.role.value,
                "address": account.address,
                "free": free,
                "reserved": seen.reserved if seen else None,
                "level": level,
                "fees_per_day": None if own is None else own.burn_per_day,
                "runway_days": None if own is None else own.days,
            }
        )
    return rows


def status_document(
    desired: Desired, observed: Observed, conditions: Conditions, plan: Plan
) -> dict[str, Any]:
    """``status --json``: head, workers with conditions, balances and alerts."""
    return {
        "format_version": 1,
        "head": observed.head.model_dump(mode="json"),
        "workers": status_rows(desired, observed, conditions),
        "accounts": account_rows(desired, observed),
        "alerts": [a.model_dump(mode="json") for a in plan.alerts],
        "process": {c.type: condition_document(c) for c in conditions.process},
    }


def render_status_document(observed: Observed, document: dict[str, Any]) -> str:
    """The status table, then unhealthy conditions, balances and alerts."""
    rows = document["workers"]
    for row in rows:
        healthy = row["conditions"].get("Healthy")
        row["health"] = (
            None if healthy is None else "ok" if healthy["status"] == "True" else healthy["reason"]
        )
    out = [render_status(observed, rows, extra=("health",)).rstrip("\n")]
    problems = [
        f"  {r['worker']}: {c['reason']} since {c['last_transition'][:19]}Z: {c['message']}"
        for r in rows
        for t, c in r["conditions"].items()
        if t == "Healthy" and c["status"] == "False"
    ]
    if problems:
        out += ["", "conditions:", *problems]
    if document["accounts"]:
        out += ["", "accounts:"]
        width = max(len(a["account"]) for a in document["accounts"])
        for a in document["accounts"]:
            free = "-" if a["free"] is None else format_pha(int(a["free"]))
            level = f"  ({a['level']})" if a["level"] not in (None, "ok") else ""
            out.append(f"  {a['account']:<{width}}  {free}{level}{runway_text(a)}")
    alerts = document["alerts"]
    out += ["", f"alerts: {len(alerts) or 'none'}"]
    out += [
        f"  [{a['severity']}] {a['target']}: {a['name'] + ': ' if a.get('name') else ''}"
        f"{a['message']}"
        for a in alerts
    ]
    return "\n".join(out) + "\n"


def runway_text(row: dict[str, Any]) -> str:
    """``  runway 41.5 days (0.12 PHA/day of fees)``; empty when no fee was paid."""
    per_day = row.get("fees_per_day")
    if not per_day:
        return ""
    days = row.get("runway_days")
    lasts = "-" if days is None else f"{days:g} days"
    return f"  runway {lasts} ({format_pha(int(per_day))}/day of fees)"


def render_status(
    observed: Observed, rows: list[dict[str, Any]], *, extra: tuple[str, ...] = ()
) -> str:
    head = observed.head
    out = [f"chain: best #{head.best_number}, finalized #{head.finalized_number}"]
    cols = [
        "worker",
        "pool",
        "desired",
        "phase",
        "session_state",
        "stake",
        "initial_score",
        "blocknum",
    ]
    if any(r.get("relay") for r in rows):
        cols.append("relay")  # only a process that runs relays knows them
    cols.extend(extra)
    table = [[_cell(c, r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(t[i]) for t in table]) for i, c in enumerate(cols)]
    out.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for t, r in zip(table, rows, strict=True):
        line = "  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True))
        if r.get("error"):
            line += f"  ({r['error']})"
        out.append(line.rstrip())
    return "\n".join(out) + "\n"


def _relay_value(observed: Observed, worker: str) -> str | None:
    status = observed.relays.get(worker)
    return status.value if status is not None else None


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "stake":
        return format_pha(int(value))
    return str(value)


def run_async(coro: Any) -> Any:
    return run_on_event_loop(coro)


def _verdict(result: ActionResult) -> str:
    return "ok" if result.ok else f"not done ({result.error})"
