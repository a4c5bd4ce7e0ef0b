"""Prometheus metrics of ``poolkeeper run``: what a dashboard and alert rules need.

An operator running ``run`` for months watches it from Prometheus, not from its log:
workers by phase, what the plan wants, alerts, balances, relay lag, reachability, how
long passes take and whether they pass, extrinsics and their fees, and where the chain
is. Everything here is fed from outside: each finished pass (``on_pass``), each failed
one (``on_error``) and each settled extrinsic (``record``, the executor's audit sink),
into a dedicated ``CollectorRegistry`` (never the process-global one) served by
``serve``. Per-pass values are swapped in atomically as one snapshot, so a scrape never
sees a half-updated pass. Names follow Prometheus conventions: ``poolkeeper_`` prefix,
units in names, ``_total`` counters. docs/metrics.md lists them.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from poolkeeper._version import __version__
from poolkeeper.apply.audit import AuditEntry
from poolkeeper.apply.executor import AuditSink
from poolkeeper.errors import TemporaryError
from poolkeeper.model.actions import Alert
from poolkeeper.model.conditions import ConditionStatus, worker_joins
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.model.phase import WorkerPhase, phase_of
from poolkeeper.model.runway import runways

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from poolkeeper.loop import PassResult

PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_ALERT_KINDS = (
    ("another chain", "wrong_genesis"),
    ("unreachable", "pruntime_unreachable"),
    ("unresponsive", "worker_unresponsive"),
    ("relay is stalled", "relay_stalled"),
    ("critical threshold", "balance"),
    ("warn threshold", "balance"),
    ("top up", "top_up"),
    ("top-up", "top_up"),
    ("proxy", "proxy"),
    ("free stake", "pool_stake"),
    ("public key", "pubkey_mismatch"),
    ("operator", "foreign_operator"),
    ("pool", "pool"),
    ("address", "account_address"),
)


def alert_kind(alert: Alert) -> str:
    """A stable, low-cardinality name for what an alert is about."""
    if alert.name:  # FundingRunwayLow -> funding_runway_low
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in alert.name).lstrip("_")
    text = alert.message.lower()
    for needle, kind in _ALERT_KINDS:
        if needle in text:
            return kind
    return alert.target.split("/", 1)[0] or "other"


@dataclass
class _Snapshot:
    """The gauges of the latest pass, replaced as a whole."""

    families: list[Metric] = field(default_factory=list)


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


SampleKey = tuple[str, tuple[str, ...]]


def _add(
    family: GaugeMetricFamily,
    labels: tuple[str, ...],
    value: float,
    kept: dict[SampleKey, Sample],
    fresh: dict[SampleKey, Sample],
) -> None:
    """``family.add_metric``, reusing last pass's sample of the same labels when its value
    is the same (samples are immutable): 10,000 workers' samples are not built again
    every pass. ``fresh`` collects this pass's samples (the next pass's ``kept``)."""
    key = (family.name, labels)
    sample = kept.get(key)
    if sample is None or sample.value != value:
        family.add_metric(labels, value)
        sample = family.samples[-1]
    else:
        family.samples.append(sample)
    fresh[key] = sample


class PoolMetrics(Collector):
    """Every poolkeeper metric, in the registry it is given."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._snapshot = _Snapshot()
        self._worker_samples: dict[SampleKey, Sample] = {}
        """Last pass's per-worker samples (``_add``), by family name and labels."""
        self._last_good: float | None = None
        self._loop_ok: bool | None = None
        self.pass_duration = Histogram(
            "poolkeeper_pass_duration_seconds",
            "Wall time of a reconcile pass (observe, plan, act).",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self.passes = Counter(
            "poolkeeper_passes", "Reconcile passes by result.", ["result"], registry=registry
        )
        self.rpc_errors = Counter(
            "poolkeeper_rpc_errors",
            "Failed reads: pRuntimes that did not answer a pass, passes failed on the chain.",
            ["peer"],
            registry=registry,
        )
        self.extrinsics = Counter(
            "poolkeeper_extrinsics",
            "Settled extrinsics by status (in_block, finalized, failed, rejected, dropped).",
            ["status"],
            registry=registry,
        )
        self.calls = Counter(
            "poolkeeper_extrinsic_calls",
            "Calls inside settled extrinsics by result (ok, failed).",
            ["result"],
            registry=registry,
        )
        self.fees = Counter(
            "poolkeeper_fees_paid_plancks",
            "Transaction fees paid, in plancks, by signer account.",
            ["signer"],
            registry=registry,
        )
        self.actions = Counter(
            "poolkeeper_actions_executed",
            "Plan actions executed by kind and result (ok, failed).",
            ["kind", "result"],
            registry=registry,
        )
        for status in ("in_block", "finalized", "failed", "rejected", "dropped"):
            self.extrinsics.labels(status)
        for result in ("ok", "failed"):
            self.passes.labels(result)
            self.calls.labels(result)
        for peer in ("chain", "pruntime"):
            self.rpc_errors.labels(peer)
        registry.register(self)

    # --- feeding ------------------------------------------------------------------------

    def on_pass(self, result: PassResult, desired: Desired) -> None:
        """Take in a finished pass (its observation, plan, results and conditions)."""
        self.passes.labels("ok").inc()
        if result.duration_seconds:
            self.pass_duration.observe(result.duration_seconds)
        unreachable = sum(1 for p in result.observed.pruntimes.values() if p.info is None)
        if unreachable:
            self.rpc_errors.labels("pruntime").inc(unreachable)
        kinds = {a.id: a.kind.value for a in result.plan.actions}
        for r in result.results:
            kind = kinds.get(r.action_id, r.action_id.split(":", 1)[0])
            self.actions.labels(kind, "ok" if r.ok else "failed").inc()
        self._last_good = time.time()
        self._loop_ok = True
        families = list(self._pass_families(result, desired))
        with self._lock:
            self._snapshot = _Snapshot(families)

    def on_error(self, exc: BaseException) -> None:
        """Take in a failed pass."""
        self.passes.labels("failed").inc()
        self._loop_ok = False
        if isinstance(exc, TemporaryError):
            self.rpc_errors.labels("chain").inc()

    def record(self, entry: AuditEntry) -> None:
        """The executor's audit sink: count a settled extrinsic and its fee."""
        self.extrinsics.labels(entry.status).inc()
        for call in entry.calls:
            self.calls.labels("ok" if call.ok else "failed").inc()
        if entry.fee:
            self.fees.labels(entry.signer_name or entry.signer_address).inc(entry.fee)

    # --- exposition ---------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return ()  # names vary with the pass; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        info = _gauge("poolkeeper_build_info", "Always 1; the version as a label.", ["version"])
        info.add_metric([__version__], 1)
        yield info
        last = _gauge(
            "poolkeeper_last_good_pass_timestamp_seconds",
            "Unix time at which the last pass completed (0 before the first).",
        )
        last.add_metric([], self._last_good or 0.0)
        yield last
        if self._loop_ok is not None:
            loop = _gauge("poolkeeper_loop_healthy", "1 when the last reconcile pass completed.")
            loop.add_metric([], 1 if self._loop_ok else 0)
            yield loop
        with self._lock:
            families = list(self._snapshot.families)
        yield from families

    def _pass_families(self, result: PassResult, desired: Desired) -> Iterator[Metric]:
        observed, plan, conditions = result.observed, result.plan, result.conditions
        head = observed.head
        best = _gauge("poolkeeper_chain_best_block_number", "Best block number seen by the pass.")
        best.add_metric([], head.best_number)
        yield best
        final = _gauge(
            "poolkeeper_chain_finalized_block_number", "Finalized block number seen by the pass."
        )
        final.add_metric([], head.finalized_number)
        yield final

        phases: Tally[tuple[str, str]] = Tally()
        lag = _gauge(
            "poolkeeper_relay_lag_blocks",
            "Finalized head minus the block the worker's pRuntime expects next.",
            ["worker", "pool"],
        )
        up = _gauge(
            "poolkeeper_pruntime_up", "1 when the pRuntime answered GetInfo this pass.", ["worker"]
        )
        kept, fresh = self._worker_samples, dict[SampleKey, Sample]()
        joins = worker_joins(desired, observed)  # the conditions' joins of this pass
        for worker in desired.workers:
            prt, _, chain = joins[worker.name]
            info = prt.info if prt else None
            phases[(phase_of(prt, chain, head).value, worker.pool or "")] += 1
            _add(up, (worker.name,), 1 if info is not None else 0, kept, fresh)
            if info is not None and info.initialized:
                lag_blocks = max(0, head.finalized_number - info.blocknum)
                _add(lag, (worker.name, worker.pool or ""), lag_blocks, kept, fresh)
        self._worker_samples = fresh
        workers = _gauge(
            "poolkeeper_workers", "Inventory workers by observed phase and pool.", ["phase", "pool"]
        )
        pools = sorted({w.pool or "" for w in desired.workers})
        for phase in WorkerPhase:
            for pool in pools:
                workers.add_metric([phase.value, pool], phases.get((phase.value, pool), 0))
        yield workers
        yield lag
        yield up

        planned = _gauge(
            "poolkeeper_plan_actions", "Actions the last plan wants (drift), by kind.", ["kind"]
        )
        for kind, count in sorted(Tally(a.kind.value for a in plan.actions).items()):
            planned.add_metric([kind], count)
        yield planned
        waits = _gauge("poolkeeper_plan_waits", "Waits in the last plan (sync, cool-down, ...).")
        waits.add_metric([], len(plan.waits))
        yield waits
        drift = _gauge("poolkeeper_plan_drift", "Differences reported but not fixed by the plan.")
        drift.add_metric([], len(plan.drift))
        yield drift
        alerts = _gauge(
            "poolkeeper_alerts", "Alerts of the last plan by kind and level.", ["kind", "level"]
        )
        for (kind, level), count in sorted(
            Tally((alert_kind(a), a.severity.value) for a in plan.alerts).items()
        ):
            alerts.add_metric([kind, level], count)
        yield alerts

        free = _gauge(
            "poolkeeper_account_free_plancks",
            "Free balance of each inventory account, in plancks.",
            ["account", "role"],
        )
        for account in desired.accounts:
            seen = observed.accounts.get(account.address) if account.address else None
            if seen is not None:
                free.add_metric([account.name, account.role.value], seen.free)
        yield free
        yield from _runway_families(desired, observed)
        for name, value, doc in (
            ("poolkeeper_balance_warn_below_plancks", desired.settings.warn_below, "warn"),
            (
                "poolkeeper_balance_critical_below_plancks",
                desired.settings.critical_below,
                "critical",
            ),
        ):
            threshold = _gauge(name, f"The inventory's {doc} balance threshold, in plancks.")
            threshold.add_metric([], value)
            yield threshold

        if conditions is None:
            return
        # Counted by object first: workers in the same state share their conditions
        # (``derive_conditions``), so labels are worked out once per distinct condition.
        flat = list(itertools.chain.from_iterable(conditions.workers.values()))
        each = Tally(map(id, flat))
        distinct = dict(zip(map(id, flat), flat, strict=True))
        by_type: Tally[tuple[str, str, str, str]] = Tally()
        for key, count in each.items():
            c = distinct[key]
            by_type[(c.type, c.status.value, c.reason.value, c.severity or "")] += count
        family = _gauge(
            "poolkeeper_worker_conditions",
            "Workers by condition, status, reason and severity (warn, critical or empty).",
            ["condition", "status", "reason", "severity"],
        )
        for (type_, status, reason, severity), count in sorted(by_type.items()):
            family.add_metric([type_, status, reason, severity], count)
        yield family
        for c in conditions.process:
            if c.type == "ChainStalled":
                gauge = _gauge(
                    "poolkeeper_chain_stalled",
                    "1 when no new finalized block came for the configured block times.",
                )
                gauge.add_metric([], 1 if c.status is ConditionStatus.TRUE else 0)
                yield gauge


class AuditFanOut:
    """An audit sink that hands every entry to several (the log file and the metrics)."""

    def __init__(self, *sinks: AuditSink) -> None:
        self._sinks = sinks

    def record(self, entry: AuditEntry) -> None:
        for sink in self._sinks:
            sink.record(entry)


def _runway_families(desired: Desired, observed: Observed) -> Iterator[Metric]:
    """Fee burn and funding runway per account (model.runway), and the declared limit."""
    burn = _gauge(
        "poolkeeper_account_fee_burn_plancks_per_day",
        "Fees an account paid per day over the runway window (audit log), in plancks.",
        ["account"],
    )
    days = _gauge(
        "poolkeeper_account_funding_runway_days",
        "Days the account's free balance lasts at its fee burn (accounts that paid fees).",
        ["account"],
    )
    for name, runway in runways(desired, observed).items():
        burn.add_metric([name], runway.burn_per_day)
        if runway.days is not None:
            days.add_metric([name], runway.days)
    yield burn
    yield days
    threshold = _gauge(
        "poolkeeper_funding_runway_alert_below_days",
        "The inventory's runway alert threshold (FundingRunwayLow), in days; 0: none declared.",
    )
    threshold.add_metric([], desired.settings.runway.alert_below_days or 0)
    yield threshold


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100`` for IPv6) as (host, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(metrics: PoolMetrics, listen: str) -> WSGIServer:
    """Serve ``/metrics`` on ``listen`` from a daemon thread; the server (to shut down)."""
    host, port = parse_listen(listen)
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
