"""One pass of ``poolkeeper run``'s loop at 10,000 workers, without the network: CPU per
stage of a steady-state pass, and what each structure the loop keeps between passes holds.

The world is ``plan_10k.py``'s converged one (50 pools x 200 workers, every pRuntime
synced, every worker computing as declared). The chain and pRuntime ports are fakes that
answer at once with freshly built values (the chain's models, the pRuntimes' decoded
``PhactoryInfo`` read through the observer's real reader), so what is
timed is the loop's own Python work: the observer's side (10,000 ``GetInfo`` results
gathered, ``Observed`` built, the memories noting it), ``plan_for``, the conditions, the
relay plan, and what ``run`` does after each pass (the control API's hub: observation
deltas, rows, condition documents, the plan document and the kept plan; the pass
reporter's alerts; the metrics; the heap trim). The relays themselves are not run (their
port is a fake): they are measured elsewhere.

Two steady states, each after warm-up passes:

- ``still``: nothing changed between passes (the same chain head and pRuntime blocks);
- ``advancing``: the chain finalized 3 more blocks since the last pass and every pRuntime
  followed (the real steady state of a synced pool: every pRuntime's block number, every
  Synced condition's "at block N" and every status row's ``blocknum`` change each pass).

Standing memory: after the passes, the size of what each structure keeps (Python objects
reachable from it and not already counted for an earlier one, in the order listed), and
tracemalloc's traced total in a second run with tracing on.

    .venv/bin/python benchmarks/loop_pass_10k.py [--passes 5] [--no-memory] [--src DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ``--src DIR`` measures another tree's code (an export of an older commit: before/after).
SRC = Path(sys.argv[sys.argv.index("--src") + 1]) if "--src" in sys.argv else ROOT / "src"
sys.path[:0] = [str(SRC), str(ROOT / "benchmarks")]

# Imported first: ``plan_10k`` puts this checkout's src first on the path.
importlib.import_module("poolkeeper")

from plan_10k import inventory_data, observed_world  # noqa: E402

from poolkeeper._heap import heap_trimmer  # noqa: E402
from poolkeeper.apply.journal import Journal  # noqa: E402
from poolkeeper.apply.pool_settings import PoolSettingsMemory  # noqa: E402
from poolkeeper.chain.ports import ChainState  # noqa: E402
from poolkeeper.chain.relay_source import RelaySource  # noqa: E402
from poolkeeper.cli._control import ControlService  # noqa: E402
from poolkeeper.cli._run_events import PassReporter  # noqa: E402
from poolkeeper.keys import KeyRing  # noqa: E402
from poolkeeper.loop import PassResult, Reconciler, ReconcilerPorts, RelayPort  # noqa: E402
from poolkeeper.metrics import PoolMetrics  # noqa: E402
from poolkeeper.model.desired import Desired  # noqa: E402
from poolkeeper.model.observed import (  # noqa: E402
    ChainHead,
    ChainWorker,
    Observed,
    ObservedPool,
    RelayStatus,
)
from poolkeeper.observe.pruntime_info import PRuntimeInfoReader  # noqa: E402
from poolkeeper.observe.pubkeys import PubkeyMemory  # noqa: E402
from poolkeeper.observe.sync_rates import SyncRateMemory  # noqa: E402
from poolkeeper.plan import PlanPolicy, plan_for  # noqa: E402
from poolkeeper.pruntime import PhactoryInfo  # noqa: E402
from poolkeeper.relay.external import ExternalRelayFactory  # noqa: E402
from poolkeeper.relay.supervisor import AnyRelayOptions  # noqa: E402
from poolkeeper.relay.worker import Submit  # noqa: E402


class World:
    """The converged world, moving ``step`` finalized blocks per pass."""

    def __init__(self, desired: Desired, step: int) -> None:
        base = observed_world(desired, "converged")
        self.base = base
        self.step = step
        self.finalized = base.head.finalized_number
        self.infos = {
            endpoint: p.info.model_dump() for endpoint, p in base.pruntimes.items() if p.info
        }
        self.workers = {k: w.model_dump() for k, w in base.chain_workers.items()}
        self.pools = {pid: p.model_dump() for pid, p in base.pools.items()}

    def advance(self) -> None:
        self.finalized += self.step


class Chain:
    """The chain port's reads: the world's chain state, built afresh as decoding would
    (chain workers with one shared fields set when the measured tree's decoder does so)."""

    def __init__(self, world: World) -> None:
        self.world = world
        storage = importlib.import_module("poolkeeper.chain._storage")
        self.shared_fields: set[str] | None = getattr(storage, "_CHAIN_WORKER_FIELDS", None)

    def _worker(self, values: dict[str, Any]) -> ChainWorker:
        worker = ChainWorker(**values)
        if self.shared_fields is not None:
            object.__setattr__(worker, "__pydantic_fields_set__", self.shared_fields)
        return worker

    async def read_state(
        self, pids: Sequence[int], addresses: Sequence[str], pubkeys: Sequence[str] = ()
    ) -> ChainState:
        w = self.world
        if not pids:  # the observer's extra read of pubkeys not in a pool: none here
            return ChainState(w.base.head, w.base.cool_down_period, {}, {}, {}, ())
        head = ChainHead(
            best_number=w.finalized + 2,
            finalized_number=w.finalized,
            timestamp_ms=w.base.head.timestamp_ms + w.finalized * 12_000,
        )
        return ChainState(
            head=head,
            cool_down_period=w.base.cool_down_period,
            workers={k: self._worker(v) for k, v in w.workers.items()},
            pools={pid: ObservedPool(**p) for pid, p in w.pools.items()},
            accounts=dict(w.base.accounts),
            proxies=w.base.proxies,
        )

    async def close(self) -> None:
        return None


class PRuntimeClient:
    """``GetInfo`` of one pRuntime, decoded: synced to the world's finalized block."""

    def __init__(self, world: World, endpoint: str) -> None:
        self.world, self.endpoint = world, endpoint

    async def get_info(self) -> PhactoryInfo:
        data = self.world.infos[self.endpoint]
        return PhactoryInfo(
            initialized=data["initialized"],
            public_key=data["public_key"],
            headernum=self.world.finalized + 1,
            blocknum=self.world.finalized + 1,
            version="1.2.3",
            git_revision="0123456789abcdef0123456789abcdef01234567",
        )


class Transport:
    """The pRuntime transport handing out clients: what the observer's reader uses."""

    def __init__(self, world: World) -> None:
        self.world = world

    def client(self, url: str) -> PRuntimeClient:
        return PRuntimeClient(self.world, url)


class Relays:
    """The relay port: every wanted relay running (the relays are measured elsewhere)."""

    def __init__(self) -> None:
        self.wanted: dict[str, tuple[str, AnyRelayOptions]] = {}
        self._statuses: dict[str, RelayStatus] = {}

    def reconcile(self, wanted: Mapping[str, tuple[str, AnyRelayOptions]]) -> None:
        if wanted.keys() != self.wanted.keys():
            self._statuses = dict.fromkeys(wanted, RelayStatus.RUNNING)
        self.wanted = dict(wanted)

    def statuses(self) -> dict[str, RelayStatus]:
        return dict(self._statuses)

    def details(self) -> dict[str, str]:
        return {}

    def note_observation(self, observed: Observed) -> None:
        return None

    async def stop_all(self) -> None:
        return None


class NoRelayChainData(RelaySource):
    """Never read: no pRuntime reports a genesis block to diagnose."""

    def __init__(self) -> None:
        pass


class Loop:
    """A ``Reconciler`` on the fakes, with what ``poolkeeper run`` hangs on each pass."""

    def __init__(self, desired: Desired, world: World, tmp: Path) -> None:
        relays = Relays()

        def make_relays(
            submit_for: Callable[[str], Submit | None], in_flight: Callable[[str], bool]
        ) -> RelayPort:
            return relays

        state = tmp / "state"
        state.mkdir()
        self.clock_at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
        chain = Chain(world)
        ports = ReconcilerPorts(
            chain=chain,  # type: ignore[arg-type]
            source=NoRelayChainData(),
            pruntimes=PRuntimeInfoReader(Transport(world)),
            relays=make_relays,
            journal=Journal(state / "journal.sqlite"),
            keys=KeyRing(desired, None),
            pubkeys=PubkeyMemory(state / "pubkeys.json"),
            pool_settings=PoolSettingsMemory(state / "pool_settings.json"),
            external_relays=ExternalRelayFactory(desired.settings, "ws://chain", state),
            sync_rates=SyncRateMemory(state / "sync_rates.json"),
            clock=lambda: self.clock_at,
        )
        self.rec = Reconciler(desired, ports)
        self.world = world
        self.relays = relays
        self.control = ControlService(self.rec, PlanPolicy(), tmp)
        self.reporter = PassReporter()
        from prometheus_client import CollectorRegistry

        self.metrics = PoolMetrics(CollectorRegistry())
        self.trim = heap_trimmer()
        self.policy = PlanPolicy()
        self.last: PassResult | None = None

    def on_pass(self, result: PassResult) -> None:
        """What ``poolkeeper run`` does with each pass (``cli/_run.py``)."""
        self.control.publish_pass(result)
        self.reporter.report(result)
        self.metrics.on_pass(result, self.rec.desired)
        self.trim()

    def next_pass(self) -> None:
        self.world.advance()
        self.clock_at += timedelta(seconds=30)

    async def whole_pass(self) -> float:
        """CPU seconds of ``reconcile_once`` + what ``run`` does after it."""
        self.next_pass()
        cpu = time.process_time()
        result = await self.rec.reconcile_once(self.policy)
        self.on_pass(result)
        self.last = result
        return time.process_time() - cpu

    async def staged_pass(self) -> dict[str, float]:
        """The same pass, stage by stage (the steps of ``Reconciler._reconcile_once``)."""
        self.next_pass()
        rec, times = self.rec, {}

        def lap(name: str, started: float) -> float:
            now = time.process_time()
            times[name] = now - started
            return now

        t = time.process_time()
        resolved = await rec.executor.recover()
        t = lap("journal: settle unsettled extrinsics", t)
        observed = await rec.observe()
        t = lap("observe (10,000 GetInfo + chain state, memories)", t)
        plan = plan_for(rec.desired, observed, self.policy)
        t = lap("plan_for", t)
        conditions = rec.note_conditions(observed)
        t = lap("conditions (derive_conditions)", t)
        wanted = rec.relay_plan(observed)
        rec.relays.reconcile(wanted)
        t = lap("relay plan (wanted_relays + options)", t)
        in_flight = rec.journal.pending_action_ids()
        _ = [a for a in plan.actions if a.id not in in_flight]
        await rec._notify(plan, conditions)
        t = lap("journal in-flight + alerts to notify", t)
        result = PassResult(observed, plan, conditions=conditions, resolved=resolved)
        self.control.publish_pass(result)
        t = lap("control API: publish the pass", t)
        self.reporter.report(result)
        t = lap("pass reporter (log records, alert tracker)", t)
        self.metrics.on_pass(result, rec.desired)
        t = lap("metrics", t)
        self.trim()
        lap("heap trim", t)
        self.last = result
        return times


class GcClock:
    """CPU seconds the garbage collector's collections took, and how many (by generation)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections[info["generation"]] += 1


def rss_mb() -> float:
    """The process's resident set now (``VmRSS``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of the objects reachable from ``root`` not in ``seen`` (which grows)."""
    size = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return size


def standing(loop: Loop) -> list[tuple[str, float]]:
    """MB each kept structure holds beyond the ones before it."""
    import enum

    seen: set[int] = set()
    # Shared interpreter-wide objects (enum members, module constants) count for nobody.
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, (enum.Enum, str, int, frozenset, tuple)):
                seen.add(id(value))
    rec, last = loop.rec, loop.last
    assert last is not None
    hub = loop.control.hub
    parts: list[tuple[str, object]] = [
        ("inventory (Desired)", rec.desired),
        ("observation (Observed)", last.observed),
        ("conditions", rec.conditions),
        ("plan", last.plan),
        # The hub's own copy (a text form since 2026-12-06; ``observed`` decodes it anew).
        ("control hub: observation", getattr(hub, "_observation", None) or hub.observed),
        ("control hub: status rows", hub.rows),
        ("control hub: condition documents", hub._conditions),
        ("control hub: plan document", hub.plan),
        ("control: kept plans", loop.control._plans),
        ("metrics: last pass's families", loop.metrics._snapshot),
        ("pass reporter: alert tracker", loop.reporter),
        ("memories (pubkeys, sync rates)", (rec.pubkeys, rec._ports.sync_rates)),
    ]
    return [(name, deep_size(obj, seen) / 1e6) for name, obj in parts]


def tune_collector() -> str:
    """What ``poolkeeper run`` does to the garbage collector, when the measured tree does."""
    try:
        tune = importlib.import_module("poolkeeper._gc").tune_collector
    except ImportError:
        return f"collector thresholds {gc.get_threshold()} (as the measured tree leaves them)"
    tune()
    return f"collector thresholds {gc.get_threshold()} (poolkeeper._gc, as run sets them)"


async def measure(passes: int, step: int, tmp: Path) -> tuple[dict[str, list[float]], Loop]:
    desired = Desired.model_validate(inventory_data())
    loop = Loop(desired, World(desired, step), tmp)
    for _ in range(3):  # warm-up: first pass (everything new), then the steady state
        await loop.whole_pass()
    figures: dict[str, list[float]] = {}
    clock = GcClock()
    for _ in range(passes):
        for name, seconds in (await loop.staged_pass()).items():
            figures.setdefault(name, []).append(seconds)
        clock.seconds, clock.collections = 0.0, [0, 0, 0]
        gc.callbacks.append(clock)
        try:
            whole = await loop.whole_pass()
        finally:
            gc.callbacks.remove(clock)
        figures.setdefault("whole pass (reconcile_once + run's on_pass)", []).append(whole)
        figures.setdefault("  of which garbage collection", []).append(clock.seconds)
    print(f"  objects tracked by the garbage collector: {len(gc.get_objects()):,}")
    print(f"  collections in the last whole pass (generation 0, 1, 2): {clock.collections}")
    return figures, loop


def report(title: str, figures: dict[str, list[float]]) -> None:
    print(title)
    staged = 0.0
    for name, values in figures.items():
        median = statistics.median(values)
        if not name.startswith(("whole", " ")):
            staged += median
        print(f"  {name:<52} {median * 1000:8.1f} ms CPU")
    print(f"  {'sum of the stages':<52} {staged * 1000:8.1f} ms CPU")


async def traced_total(step: int, tmp: Path) -> float:
    """MB tracemalloc counts held after the steady passes (loop built under tracing)."""
    tracemalloc.start()
    desired = Desired.model_validate(inventory_data())
    loop = Loop(desired, World(desired, step), tmp)
    for _ in range(4):
        await loop.whole_pass()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    return held


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--src", help="the source tree to measure (default: this checkout's)")
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"one loop pass at 10,000 workers; median of {args.passes}; load average {load}")
    print(f"code measured: {Path(sys.modules['poolkeeper'].__file__ or '').parent}")
    print(tune_collector())
    loop: Any = None
    for label, step in (("still", 0), ("advancing", 3)):
        loop = None  # the last world goes before the next is built
        gc.collect()
        with tempfile.TemporaryDirectory() as tmp:
            figures, loop = asyncio.run(measure(args.passes, step, Path(tmp)))
            report(f"steady state '{label}':", figures)
            print(f"  RSS of this process after the passes: {rss_mb():.0f} MB")
            if label == "advancing" and not args.no_memory:
                print("standing memory after the passes (MB, each beyond those above it):")
                for name, mb in standing(loop):
                    print(f"  {name:<52} {mb:8.1f} MB")
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            held = asyncio.run(traced_total(3, Path(tmp)))
        print(f"tracemalloc: traced after 4 passes ('advancing'): {held:.1f} MB")


if __name__ == "__main__":
    main()
