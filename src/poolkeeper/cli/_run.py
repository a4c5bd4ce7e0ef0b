"""``poolkeeper run``: the reconcile loop as a service, with what runs beside it (the
control API, metrics, the inventory watcher, HA), until SIGINT/SIGTERM.

Apart from ``_live`` (the one-shot live commands) because it drives ``_control``, which
itself renders with ``_live``'s status rows: one direction of imports, no circle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poolkeeper.app import inventory_digest
from poolkeeper.cli._common import fail
from poolkeeper.cli._live import load_desired, make_reconciler
from poolkeeper.errors import InventoryError, PoolkeeperError
from poolkeeper.inventory import load_inventory
from poolkeeper.loop import PassResult, Reconciler
from poolkeeper.metrics import PoolMetrics, parse_listen, serve
from poolkeeper.model.desired import Desired
from poolkeeper.plan import PlanPolicy


def start_metrics(listen: str | None) -> tuple[PoolMetrics | None, Any]:
    """The metrics and their HTTP server on ``listen`` (none when not asked for)."""
    if not listen:
        return None, None
    from prometheus_client import CollectorRegistry

    try:
        parse_listen(listen)
        metrics = PoolMetrics(CollectorRegistry())
        server = serve(metrics, listen)
    except ValueError as error:
        raise fail(f"error: {error}") from None
    except OSError as error:
        raise fail(f"error: cannot serve metrics on {listen}: {error.strerror or error}") from None
    logging.getLogger("poolkeeper.run").info(
        "metrics: http://%s/metrics", listen, extra={"event": "metrics.listen"}
    )
    return metrics, server


async def run_loop_async(
    directory: Path,
    *,
    policy: PlanPolicy,
    once: bool = False,
    metrics_addr: str | None = None,
    ha: str | None = None,
    shards: Sequence[str] = (),
) -> int:
    """``poolkeeper run``: the reconcile loop until SIGINT/SIGTERM (or one pass with ``once``).

    Everything it reports goes through ``logging`` (``poolkeeper.logs`` sets the format);
    no failed pass ends it, only a signal does. It holds the state dir lock, serves the
    control API (``docs/api.md``) and, when asked, Prometheus metrics.

    With ``ha`` (or ``settings.ha``) this process signs and relays only while it owns its
    shard through an etcd lease (docs/ha.md); ``shards`` restricts it to those pools."""
    import signal

    from watchfiles import awatch

    from poolkeeper._gc import tune_collector
    from poolkeeper._heap import heap_trimmer
    from poolkeeper.cli._control import start_control
    from poolkeeper.cli._ha import ha_builder
    from poolkeeper.cli._run_events import PassReporter

    log = logging.getLogger("poolkeeper.run")
    desired = load_desired(directory)
    ha_run, build_ha = ha_builder(desired, ha, shards, directory)
    restrict = ha_run.restrict
    desired = restrict(desired)
    metrics, metrics_server = start_metrics(metrics_addr or desired.settings.metrics.listen)
    rec = make_reconciler(
        desired,
        directory,
        need_keys=True,
        progress=lambda m: log.info(m, extra={"event": "progress"}),
        lock="run",
        also_audit=metrics,
        ha=build_ha,
    )
    ha_run.attach(rec, metrics)
    stop = asyncio.Event()
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", sig.name, extra={"event": "loop.signal"})
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    async def watch() -> None:
        async for _ in awatch(directory, stop_event=stop):
            changed.set()

    def reload() -> Desired | None:
        digest = inventory_digest(directory)  # before reading: a later edit shows as a change
        try:
            fresh = load_inventory(directory)
        except InventoryError as error:
            log.error(
                "inventory changed but is invalid; keeping the previous one:\n%s",
                "\n".join(error.problems),
                extra={"event": "reload.invalid"},
            )
            return None
        log.info("inventory changed: reloaded", extra={"event": "reload.done"})
        control.reloaded(digest)
        return restrict(fresh)

    reporter = PassReporter()
    trim_heap = heap_trimmer()
    tune_collector()  # rarer collections: 10,000 workers' passes (poolkeeper._gc)

    def on_pass(p: PassResult) -> None:
        control.publish_pass(p)
        reporter.report(p)
        if metrics is not None:
            metrics.on_pass(p, rec.desired)
        trim_heap()  # freed memory back to the OS (poolkeeper._heap, docs/benchmarks.md)
        if once:
            stop.set()

    def on_error(exc: Exception, delay: float) -> None:
        control.pass_failed(exc, delay)
        rec.note_pass_failed(str(exc))
        if metrics is not None:
            metrics.on_error(exc)

    try:
        control = await start_control(rec, policy, directory)
    except BaseException:
        await rec.close()
        raise
    if ha_run.enabled:
        ha_run.publish_to = control.hub.publish_ha
    watcher = asyncio.create_task(watch())
    log.info(
        "run: %d worker(s), %d pool(s); pass every %.0fs",
        len(desired.workers),
        len(desired.pools),
        desired.settings.loop.interval_seconds,
        extra={"event": "loop.start"},
    )
    ha_task = ha_run.start(stop)
    try:
        # Under HA the owner recovers when it wins the shard (the gate), never a standby.
        if ha_task is not None or await _recover_until_done(rec, stop, log):
            await rec.run_forever(
                policy, stop, reload=reload, changed=changed, on_pass=on_pass, on_error=on_error
            )
    finally:
        stop.set()
        watcher.cancel()
        await ha_run.stop()
        await control.close()
        await rec.close()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    log.info("stopped", extra={"event": "loop.stopped"})
    return 0


async def _recover_until_done(rec: Reconciler, stop: asyncio.Event, log: logging.Logger) -> bool:
    """Settle what the journal left unsettled before the first pass, retrying with
    backoff while the chain cannot answer; False when stopped first."""
    from poolkeeper._loop_runner import describe_error
    from poolkeeper.backoff import Backoff

    backoff = Backoff(rec.desired.settings.loop.backoff_seconds)
    while not stop.is_set():
        try:
            recovered = await rec.recover()
        except Exception as exc:
            delay = backoff.next_delay()
            log.error(
                "settling the journal failed: %s; next try in %.1fs",
                describe_error(exc),
                delay,
                exc_info=None if isinstance(exc, PoolkeeperError) else exc,
                extra={"event": "journal.error"},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        for r in recovered:
            log.info(
                "recovered from the journal: %s: %s",
                r.action_id,
                "ok" if r.ok else r.error,
                extra={"event": "journal.recovered", "action": r.action_id},
            )
        return True
    return False
