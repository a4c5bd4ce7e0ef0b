"""``run --ha`` / ``--shard`` glue for the CLI: builds the HA parts (when asked for),
keeps the agent task beside the reconcile loop, stops relays at once when the lease is
lost, and publishes ownership as metrics and in ``<state_dir>/ha.json`` (for ``status``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from poolkeeper.apply.journal import Journal
from poolkeeper.cli._common import fail
from poolkeeper.loop import PassGate, Reconciler
from poolkeeper.metrics import PoolMetrics
from poolkeeper.model.conditions import Conditions, with_etcd_tls, with_ha_lease
from poolkeeper.model.desired import Desired


@dataclass
class HaCli:
    """The HA side of one ``run`` (inert without ``--ha`` / ``settings.ha``)."""

    shards: tuple[str, ...] = ()
    enabled: bool = False
    target: Any = None
    """Where etcd is and how to speak to it (``poolkeeper.ha.setup.EtcdTarget``)."""
    names: tuple[str, ...] = ()
    """The shards this process campaigns for, each through its own lease."""
    run: Any = None
    rec: Reconciler | None = None
    state_file: Path | None = None
    publish_to: Callable[[dict[str, Any]], None] | None = None
    """Also sends each ownership document here (the control API's stream)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _gauges: tuple[Any, Any] | None = field(default=None, init=False)

    def restrict(self, desired: Desired) -> Desired:
        from poolkeeper.ha.setup import restrict

        return restrict(desired, self.shards)

    def build(self, desired: Desired) -> Callable[[Path], tuple[Journal, PassGate]]:
        from poolkeeper.ha.setup import build

        def make(state_dir: Path) -> tuple[Journal, PassGate]:
            self.state_file = state_dir / "ha.json"
            self.run = build(
                desired,
                target=self.target,
                shards=self.names,
                state_dir=state_dir,
                log=lambda m: typer.echo(m, err=m.startswith("ALERT")),
                on_fenced=self._fenced,
            )
            return self.run.journal, self.run.gate

        return make

    def _fenced(self, shard: str, reason: str) -> None:
        rec = self.rec
        if rec is not None:  # stop relaying now, not at the next pass
            if len(self.names) == 1:
                asyncio.get_running_loop().create_task(rec.relays.stop_all())
            else:  # only the lost shard's relays: the others' shards are still owned
                rec.keep_relays(self.run.gate.may_relay)
        self._publish()

    def attach(self, rec: Reconciler, metrics: PoolMetrics | None) -> None:
        self.rec = rec
        if self.enabled:
            rec.extra_conditions = self._condition
        if metrics is not None and self.enabled:
            from prometheus_client import Gauge

            self._gauges = (
                Gauge(
                    "poolkeeper_ha_owner",
                    "1 while this process owns the shard and may sign and relay.",
                    ["shard"],
                    registry=metrics.registry,
                ),
                Gauge(
                    "poolkeeper_ha_lease_ttl_seconds",
                    "Seconds the owned lease is known to last at least (0: not owner).",
                    ["shard"],
                    registry=metrics.registry,
                ),
            )

    def _condition(self, conditions: Conditions, now: datetime) -> Conditions:
        clock = time.monotonic()
        conditions = self._lease_conditions(conditions, now, clock)
        backends = {id(a.backend): a.backend for a in self.run.agents.values()}
        for backend in backends.values():  # one client shared by the shards' agents
            if getattr(backend, "watches_tls", False):  # changed TLS files refused?
                conditions = with_etcd_tls(conditions, now, backend.tls_problem)
        return conditions

    def _lease_conditions(self, conditions: Conditions, now: datetime, clock: float) -> Conditions:
        states = {s: a.fence.tick(clock).value for s, a in self.run.agents.items()}
        if len(states) == 1:
            ((shard, state),) = states.items()
            return with_ha_lease(conditions, now, shard, state, self.run.agents[shard].fence.reason)
        fenced = [s for s, state in states.items() if state == "fenced"]
        owned = [s for s, state in states.items() if state in ("waiting", "active")]
        others = [s for s in states if s not in owned]
        if fenced:
            reasons = (
                self.run.agents[fenced[0]].fence.reason
                if len(fenced) == 1
                else "; ".join(f"{s}: {self.run.agents[s].fence.reason}" for s in fenced)
            )
            return with_ha_lease(conditions, now, ", ".join(fenced), "fenced", reasons)
        if owned:
            shown = ", ".join(owned) + (f"; standby for {', '.join(others)}" if others else "")
            return with_ha_lease(conditions, now, shown, "active", "")
        return with_ha_lease(conditions, now, ", ".join(states), "standby", "")

    def _shard_document(self, agent: Any, now: float, relays: Sequence[str]) -> dict[str, Any]:
        fence = agent.fence
        gate = self.run.gate
        return {
            "shard": agent.shard,
            "state": fence.tick(now).value,
            "owner": fence.may_write(now),
            "since": fence.since_wall,
            "lease_ttl_seconds": round(fence.remaining_ttl(now), 2),
            "fenced_count": agent.fenced_count,
            "relays_running": sum(1 for w in relays if gate.shard_of_worker(w) == agent.shard),
            "last_problem": fence.reason or None,
        }

    def document(self) -> dict[str, Any]:
        """The ownership document (docs/api.md ``ha``): one row per shard in ``shards``;
        the top-level keys are those rows combined (one shard: that row)."""
        now = time.monotonic()
        agents = list(self.run.agents.values())
        relays = list(self.rec.relays.statuses()) if self.rec is not None else []
        rows = [self._shard_document(agent, now, relays) for agent in agents]
        owned = [r for r in rows if r["owner"]]
        states = {r["state"] for r in rows}
        problems = [r for r in rows if r["last_problem"]]
        since = [r["since"] for r in rows if r["since"] is not None]
        return {
            "shard": ",".join(r["shard"] for r in rows),
            "identity": agents[0].identity,
            "state": states.pop() if len(states) == 1 else "mixed",
            "owner": len(owned) == len(rows),
            "since": min(since) if since else None,
            "lease_ttl_seconds": min(r["lease_ttl_seconds"] for r in owned) if owned else 0.0,
            "fenced_count": sum(r["fenced_count"] for r in rows),
            "relays_running": len(relays),
            "last_problem": (
                (
                    problems[0]["last_problem"]
                    if len(rows) == 1
                    else "; ".join(f"{r['shard']}: {r['last_problem']}" for r in problems)
                )
                if problems
                else None
            ),
            "shards": rows,
        }

    def _publish(self) -> None:
        if not self.enabled or self.run is None:
            return
        doc = self.document()
        if self.publish_to is not None:
            self.publish_to(doc)
        if self._gauges is not None:
            for row in doc["shards"]:
                self._gauges[0].labels(row["shard"]).set(1 if row["owner"] else 0)
                self._gauges[1].labels(row["shard"]).set(row["lease_ttl_seconds"])
        if self.state_file is not None:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, sort_keys=True))
            tmp.replace(self.state_file)

    def start(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """One task per shard's agent (a slow etcd answer for one shard does not delay
        another's renewal); the returned task ends with them."""
        if not self.enabled or self.run is None:
            return None

        async def keep(agent: Any) -> None:
            while not stop.is_set():
                delay = await agent.step()
                self._publish()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

        async def go() -> None:
            await asyncio.gather(*(keep(agent) for agent in self.run.agents.values()))

        self._tasks = [asyncio.create_task(go())]
        return self._tasks[0]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.run is not None:
            from poolkeeper.ha.ports import LeaseBackendError

            agents = list(self.run.agents.values())
            for agent in agents:
                if agent.fence.is_owner(time.monotonic()):
                    with contextlib.suppress(LeaseBackendError):
                        await agent.backend.revoke(agent.fence.lease)
                agent.fence.fence(time.monotonic(), "stopped")
            self._publish()
            await agents[0].backend.close()  # one client, shared by the agents
            self.run.close()


def ha_builder(
    desired: Desired,
    flag: str | None,
    shards: Sequence[str],
    directory: Path,
) -> tuple[HaCli, Callable[[Path], tuple[Journal, PassGate]] | None]:
    """The HA side of ``run`` and the journal/gate builder to pass to the reconciler.
    Exits 1 on a configuration fault: a bad ``--ha``, an unreadable ``settings.ha.tls``
    or ``settings.ha.auth`` file, or every endpoint refusing the TLS handshake or the user
    (an unreachable etcd is not one: the process starts as a standby and keeps trying)."""
    cli = HaCli(shards=tuple(shards))
    wanted = bool(flag) or bool(desired.settings.ha and desired.settings.ha.endpoints)
    if not wanted:
        return cli, None
    try:
        from poolkeeper.ha.setup import shard_names, target_of

        cli.target = target_of(desired, flag, directory)
        cli.names = shard_names(desired, shards)
    except ImportError:
        raise fail("error: --ha needs the `ha` extra: pip install 'poolkeeper[ha]'") from None
    except ValueError as error:
        raise fail(f"error: {error}") from None
    cluster = desired.settings.ha.cluster if desired.settings.ha else "default"
    _refuse_config_faults(cli.target, cluster)
    cli.enabled = True
    return cli, cli.build(desired)


def _refuse_config_faults(target: Any, cluster: str) -> None:
    """One read from etcd before starting: a TLS handshake every endpoint refuses (wrong
    CA, missing or refused client certificate, no TLS there), a user or password etcd
    refuses, an etcd requiring a user when none is set, or a user denied the cluster's
    keys ends ``run`` with the reason; anything else (etcd down) is left to the agent,
    which keeps trying as a standby."""
    from poolkeeper.ha.etcd import EtcdConfigError
    from poolkeeper.ha.journal import BackendThread
    from poolkeeper.ha.ports import LeaseBackendError

    probe = BackendThread(lambda: target.backend(2.0), 2.0 * len(target.endpoints) + 1)
    try:
        probe.run(probe.backend.read(f"/poolkeeper/{cluster}/"))
    except EtcdConfigError as error:
        raise fail(f"error: {error}") from None
    except LeaseBackendError:
        pass
    finally:
        probe.close()


def ha_status(
    desired: Desired, flag: str | None, state_dir: Path, directory: Path
) -> dict[str, Any] | None:
    """``status``'s HA section: every shard's owner from etcd (with ``--ha``), and what the
    ``run`` sharing this state dir last wrote about itself (``ha.json``), if anything."""
    section: dict[str, Any] = {}
    local = state_dir / "ha.json"
    if local.is_file():
        with contextlib.suppress(OSError, ValueError):
            section["this_state_dir"] = json.loads(local.read_text())
    if flag:
        try:
            from poolkeeper.ha.ports import LeaseBackendError
            from poolkeeper.ha.setup import ALL, target_of
            from poolkeeper.ha.status import ownership
        except ImportError:
            section["error"] = "--ha needs the `ha` extra: pip install 'poolkeeper[ha]'"
            return section
        try:
            target = target_of(desired, flag, directory)
        except ValueError as error:
            section["error"] = str(error)
            return section
        shards = [s.name for s in desired.settings.shards] or [ALL]
        cluster = desired.settings.ha.cluster if desired.settings.ha else "default"

        async def read() -> list[dict[str, Any]]:
            backend = target.backend(2.0)
            try:
                return await ownership(backend, cluster, shards)
            finally:
                await backend.close()

        try:
            section["shards"] = asyncio.run(read())
        except LeaseBackendError as error:
            section["error"] = str(error)
    return section or None


def render_ha_status(section: dict[str, Any]) -> str:
    lines = []
    for row in section.get("shards", []):
        owner = row["owner"] or "nobody"
        ttl = row["lease_ttl_seconds"]
        since = (
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(row["since"]))
            if row["since"]
            else "-"
        )
        lines.append(
            f"shard {row['shard']}: owner {owner} since {since}, lease TTL "
            f"{'-' if ttl is None else f'{ttl}s'}, {row['unsettled_in_etcd']} unsettled in etcd"
        )
    own = section.get("this_state_dir")
    if own:
        rows = own.get("shards") or [own]
        lines.append(
            "this state dir's run: "
            + "; ".join(
                f"shard {r.get('shard')} {r.get('state')} (lease TTL {r.get('lease_ttl_seconds')}s)"
                for r in rows
            )
        )
    if "error" in section:
        lines.append(f"HA: {section['error']}")
    return "".join(f"{line}\n" for line in lines)
