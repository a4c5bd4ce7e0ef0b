"""The glue between ``poolkeeper run`` and its control API, and ``status --watch``.

``ControlService`` publishes every pass of the loop to the status hub and serves the
control requests (plan, apply an approved plan, reload) through the same ``Reconciler``:
its passes are serialized (one writer), so a request never races the loop. Kept apart
from ``_live.py`` so the loop's own glue stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from poolkeeper._version import __version__
from poolkeeper.app import inventory_digest, state_dir_of
from poolkeeper.apply.executor import ActionResult
from poolkeeper.cli._common import fail
from poolkeeper.cli._live import load_desired, render_status, status_rows
from poolkeeper.control.client import ControlClient, ControlUnavailable
from poolkeeper.control.protocol import Request, socket_path
from poolkeeper.control.server import ControlServer, RequestRefused, ServerBusy, StatusHub
from poolkeeper.errors import InventoryError
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import redact
from poolkeeper.loop import PassResult, Reconciler
from poolkeeper.model.actions import Plan
from poolkeeper.model.observed import ChainHead, Observed
from poolkeeper.plan import PlanPolicy
from poolkeeper.render import plan_document

PLANS_KEPT = 16
"""Plans an ``apply`` may name by ``plan_seq`` (older ones: plan again)."""
PLAN_BYTES_KEPT = 16 << 20
"""What the kept plans may weigh together (their actions as JSON); the newest is always
kept. As objects, a plan of 10,000 actions held ~14 MB and 16 of them ~225 MB, filling up
over the first 16 passes; as JSON it is ~3.6 MB (docs/benchmarks.md, "Soak")."""


def result_document(result: ActionResult) -> dict[str, Any]:
    return {
        "action_id": result.action_id,
        "ok": result.ok,
        "error": redact(result.error) if result.error else None,
        "extrinsic_hash": result.extrinsic_hash,
        "block": result.block_number,
    }


class ControlService:
    """A running loop's control API: the hub fed by passes, the requests served."""

    def __init__(self, rec: Reconciler, policy: PlanPolicy, directory: Path) -> None:
        self.rec = rec
        self.policy = policy
        self.directory = directory
        self.loaded_digest = inventory_digest(directory)
        """Digest of the inventory files the loop has loaded (plans are made from it)."""
        self._plans: OrderedDict[int, bytes] = OrderedDict()
        """``plan_seq`` → the plan's actions as JSON (decoded again only to approve)."""
        self._plan_bytes = 0
        self.hub = StatusHub(
            info={
                "server": "poolkeeper run",
                "version": __version__,
                "pid": os.getpid(),
                "inventory": str(directory),
            }
        )
        self.hub.secret_loaded = rec.secret_loaded
        self.hub.inventory_digest = self.loaded_digest
        self.hub.accounts = self._accounts()
        self.server = ControlServer(
            socket_path(state_dir_of(rec.desired, directory)), self.hub, self.handle
        )
        rec.on_pass_start = self.pass_started

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        self.rec.on_pass_start = None
        await self.server.close()

    def _accounts(self) -> dict[str, str]:
        return {a.name: a.address for a in self.rec.desired.accounts if a.address}

    # ---- the stream

    def pass_started(self, execute: bool) -> None:
        self.hub.publish_event("pass_started", purpose="pass" if execute else "observe")

    def publish_pass(self, result: PassResult) -> int:
        """Observed rows, the plan and the action results of one pass; the plan's seq."""
        observed = result.observed
        self.hub.accounts = self._accounts()
        self.hub.publish_observation(
            observed, status_rows(self.rec.desired, observed), result.conditions
        )
        seq = self.hub.publish_plan(plan_document(result.plan), self.loaded_digest)
        self._keep_plan(seq, result.plan)
        for r in result.results:
            self.hub.publish_event("action_result", **result_document(r))
        self.hub.publish_event(
            "pass_done",
            block=observed.head.best_number,
            actions=len(result.plan.actions),
            done=sum(1 for r in result.results if r.ok),
            failed=sum(1 for r in result.results if not r.ok),
            started_relays=result.started_relays,
        )
        return seq

    def _keep_plan(self, seq: int, plan: Plan) -> None:
        # Approving needs the actions only: the waits of 1,000 syncing workers were ~1 MB
        # a plan (docs/benchmarks.md, "Soak"). Kept as JSON, bounded by bytes.
        kept = plan.model_copy(update={"waits": (), "alerts": (), "drift": ()})
        data = kept.model_dump_json().encode()
        self._plans[seq] = data
        self._plan_bytes += len(data)
        while len(self._plans) > 1 and (
            len(self._plans) > PLANS_KEPT or self._plan_bytes > PLAN_BYTES_KEPT
        ):
            _, dropped = self._plans.popitem(last=False)
            self._plan_bytes -= len(dropped)

    def kept_plan(self, seq: int) -> Plan | None:
        """The plan published as ``seq`` (its actions), while it is kept."""
        data = self._plans.get(seq)
        return None if data is None else Plan.model_validate_json(data)

    def pass_failed(self, error: Exception, delay: float) -> None:
        self.hub.publish_event("error", message=redact(str(error)), retry_in=round(delay, 1))

    def reloaded(self, digest: str) -> None:
        """The loop reloaded the inventory whose files had ``digest`` when read."""
        self.loaded_digest = digest
        self.hub.accounts = self._accounts()
        self.hub.publish_event(
            "reloaded",
            inventory_digest=digest,
            accounts=self.hub.accounts,
            secret_loaded=self.rec.secret_loaded,
        )

    # ---- requests

    async def handle(self, request: Request) -> dict[str, Any]:
        if request.request == "plan":
            return await self._plan()
        if request.request == "reload":
            return await self._reload()
        return await self._apply(request)

    async def _plan(self) -> dict[str, Any]:
        result = await self.rec.reconcile_once(self.policy, execute=False)
        seq = self.publish_pass(result)
        return {
            "plan_seq": seq,
            "inventory_digest": self.loaded_digest,
            "plan": plan_document(result.plan),
        }

    async def _reload(self) -> dict[str, Any]:
        digest = inventory_digest(self.directory)  # before reading: a later edit shows
        try:
            fresh = load_inventory(self.directory)
        except InventoryError as error:
            raise RequestRefused(
                "the inventory is invalid; the loop keeps the previous one:\n"
                + "\n".join(error.problems)
            ) from None
        self.rec.set_desired(fresh)
        self.reloaded(digest)
        return await self._plan()

    async def _apply(self, request: Request) -> dict[str, Any]:
        on_disk = inventory_digest(self.directory)
        if request.inventory_digest != self.loaded_digest:
            raise RequestRefused(
                "the plan was made from another inventory than the loop's: plan again"
            )
        if on_disk != self.loaded_digest:
            raise RequestRefused(
                "the inventory changed on disk since the plan was made: reload and plan again"
            )
        plan = self.kept_plan(request.plan_seq or -1)
        if plan is None:
            raise RequestRefused(f"plan {request.plan_seq} is no longer known: plan again")
        by_id = {a.id: a for a in plan.actions}
        unknown = [i for i in request.action_ids if i not in by_id]
        if unknown:
            raise RequestRefused("not in that plan: " + ", ".join(unknown))
        approved = plan.model_copy(update={"actions": tuple(by_id[i] for i in request.action_ids)})
        result = await self.rec.reconcile_once(self.policy, only=approved)
        self.publish_pass(result)
        # Observe again right away: the stream must not keep showing what was just done.
        after = await self.rec.reconcile_once(self.policy, execute=False)
        seq = self.publish_pass(after)
        done = {r.action_id for r in result.results}
        return {
            "results": [result_document(r) for r in result.results],
            "not_applied": [i for i in request.action_ids if i not in done],
            "plan_seq": seq,
        }


async def start_control(rec: Reconciler, policy: PlanPolicy, directory: Path) -> ControlService:
    """The control API of ``run``; exits 1 (saying why) when another process serves it."""
    service = ControlService(rec, policy, directory)
    try:
        await service.start()
    except ServerBusy as error:
        raise fail(f"error: {error}") from None
    except OSError as error:
        raise fail(
            f"error: cannot serve the control API at {service.server.path}: {error}"
        ) from None
    return service


# ---- status --watch


def _observed_of(data: dict[str, Any] | None) -> Observed | None:
    if not data:
        return None
    try:
        return Observed.model_validate(data)
    except ValueError:
        return None


def render_view(client: ControlClient) -> str:
    view = client.view
    observed = _observed_of(view.observed)
    if observed is None:
        observed = Observed(
            read_at=datetime.now(UTC), head=ChainHead(best_number=0, finalized_number=0)
        )
    text = render_status(observed, list(view.rows.values()))
    plan = view.plan or {}
    summary = plan.get("summary") or {}
    loop = view.loop
    return (
        text
        + f"loop: {loop.get('state', '?')}, last pass {loop.get('last_pass_at') or '-'}"
        + (f", error: {loop['error']}" if loop.get("error") else "")
        + f"\nplan: {len(plan.get('actions') or [])} action(s), {summary.get('waits', 0)} wait(s),"
        f" {summary.get('alerts', 0)} alert(s)\n" + (f"{ha_line(view.ha)}\n" if view.ha else "")
    )


def ha_line(ha: dict[str, Any]) -> str:
    """One line on the serving process's HA ownership (``run --ha``); a process holding
    several shards: one part per shard."""
    rows = ha.get("shards")
    if isinstance(rows, list) and len(rows) > 1:
        parts = []
        for row in rows:
            role = "owner" if row.get("owner") else str(row.get("state", "?"))
            part = f"{row.get('shard')} {role}"
            if row.get("owner"):
                part += f" (lease TTL {row.get('lease_ttl_seconds', 0)}s)"
            if row.get("last_problem") and not row.get("owner"):
                part += f" (last problem: {row['last_problem']})"
            parts.append(part)
        return f"ha: shards {', '.join(parts)}; identity {ha.get('identity')}"
    since = ha.get("since")
    when = (
        datetime.fromtimestamp(float(since), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if since
        else "-"
    )
    role = "owner" if ha.get("owner") else str(ha.get("state", "?"))
    line = (
        f"ha: shard {ha.get('shard')} {role} since {when}, "
        f"lease TTL {ha.get('lease_ttl_seconds', 0)}s, identity {ha.get('identity')}"
    )
    if ha.get("last_problem"):
        line += f", last problem: {ha['last_problem']}"
    return line


def _describe_event(message: dict[str, Any]) -> str | None:
    event = message.get("event")
    if event == "action_result":
        verdict = "done" if message.get("ok") else f"failed: {message.get('error')}"
        return f"{message.get('action_id')}: {verdict}"
    if event == "error":
        return f"pass failed: {message.get('message')}"
    if event == "reloaded":
        return "inventory reloaded"
    return None


async def watch_status(directory: Path, *, as_json: bool, once: bool = False) -> int:
    """``status --watch``: the running loop's status, reprinted on every pass."""
    desired = load_desired(directory)
    path = socket_path(state_dir_of(desired, directory))
    try:
        client = await ControlClient.connect(path)
    except ControlUnavailable as error:
        typer.echo(
            f"error: {error}; start `poolkeeper run {directory}` (or use `status` without "
            "--watch for a one-off observation)",
            err=True,
        )
        return 1
    loop = asyncio.get_running_loop()
    watching = asyncio.current_task()
    stop_signals = (signal.SIGINT, signal.SIGTERM) if watching is not None and not once else ()
    for sig in stop_signals:
        # Handled by the loop itself, whatever it is waiting for, rather than by a
        # Python-level handler that runs only between bytecodes (a test saw a watch
        # outlive its SIGINT by 30 s once, cause not found).
        assert watching is not None
        loop.add_signal_handler(sig, watching.cancel)
    try:
        _print_view(client, as_json)
        if once:
            return 0
        async for message in client.messages():
            if as_json:
                typer.echo(_json_line(message))
                continue
            line = _describe_event(message)
            if line:
                typer.echo(line)
            if message.get("type") == "event" and message.get("event") == "pass_done":
                _print_view(client, as_json)
        typer.echo("the loop stopped serving (it was stopped or restarted)", err=True)
        return 1
    except asyncio.CancelledError:
        return 0
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.close(), 5)  # never a hang on the way out


def _json_line(message: dict[str, Any]) -> str:
    import json

    return json.dumps(message, sort_keys=True)


def _print_view(client: ControlClient, as_json: bool) -> None:
    if as_json:
        typer.echo(_json_line({"type": "hello", **client.hello}))
        typer.echo(
            _json_line(
                {
                    "type": "status",
                    "format_version": client.hello.get("format_version"),
                    "head": (client.view.observed or {}).get("head"),
                    "workers": list(client.view.rows.values()),
                    "loop": client.view.loop,
                }
            )
        )
        return
    typer.echo(render_view(client), nl=False)
