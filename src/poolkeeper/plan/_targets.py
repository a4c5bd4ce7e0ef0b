"""``--target``: limit a plan to some pools and workers, Terraform style.

Everything whose worker or pool matches a target is kept, plus (transitively) the
actions the kept ones depend on, so a targeted plan can still be applied. A targeted
plan is never the whole picture; it says so in ``Plan.warnings``.
"""

from __future__ import annotations

from poolkeeper.model.actions import Action, Alert, Drift, Wait
from poolkeeper.model.desired import Desired


def _matcher(desired: Desired, targets: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """Return (targets of workers, names of pools) selected by ``targets``."""
    pool_names: set[str] = set()
    worker_targets: set[str] = set()
    for target in targets:
        kind, _, name = target.partition("/")
        if kind == "worker":
            worker_targets.add(target)
            continue
        for pool in desired.pools:
            if name == pool.name or (pool.pid is not None and name == str(pool.pid)):
                pool_names.add(pool.name)
    return worker_targets, pool_names


def targeted_workers(desired: Desired, targets: tuple[str, ...]) -> set[str]:
    """Names of the inventory workers ``targets`` select (``worker/X``, ``pool/P``): the
    only ones whose relays (and pRuntime initialisation) a targeted run starts."""
    worker_targets, pool_names = _matcher(desired, targets)
    return {
        w.name
        for w in desired.workers
        if f"worker/{w.name}" in worker_targets or (w.pool is not None and w.pool in pool_names)
    }


def limit_to_targets(
    desired: Desired,
    targets: tuple[str, ...],
    *,
    actions: list[Action],
    waits: list[Wait],
    alerts: list[Alert],
    drift: list[Drift],
) -> tuple[list[Action], list[Wait], list[Alert], list[Drift], list[str]]:
    """Keep what the targets select; return the kept lists and the warnings to show."""
    worker_targets, pool_names = _matcher(desired, targets)
    pool_targets = {f"pool/{name}" for name in pool_names}

    def selected(target: str, pool: str | None) -> bool:
        return target in worker_targets or target in pool_targets or pool in pool_names

    kept_ids = {a.id for a in actions if selected(a.target, a.pool)}
    by_id = {a.id: a for a in actions}
    frontier = list(kept_ids)
    while frontier:
        action = by_id.get(frontier.pop())
        for prerequisite in action.prerequisites if action else ():
            if prerequisite not in kept_ids and prerequisite in by_id:
                kept_ids.add(prerequisite)
                frontier.append(prerequisite)
    kept_waits = [w for w in waits if selected(w.target, w.pool)]
    kept_alerts = [a for a in alerts if selected(a.target, a.pool)]
    kept_drift = [d for d in drift if selected(d.target, d.pool)]
    warnings = [
        "The plan is limited by --target "
        + ", ".join(targets)
        + ": other pools, workers and accounts may need changes it does not show."
    ]
    known_workers = {f"worker/{w.name}" for w in desired.workers}
    for target in targets:
        kind, _, name = target.partition("/")
        if kind == "worker" and target not in known_workers:
            seen = {i.target for i in actions} | {i.target for i in waits}
            seen |= {i.target for i in alerts} | {i.target for i in drift}
            if target not in seen:
                warnings.append(f"--target {target} matches no worker of the inventory.")
        if kind == "pool" and not any(
            name == p.name or (p.pid is not None and name == str(p.pid)) for p in desired.pools
        ):
            warnings.append(f"--target {target} matches no pool of the inventory.")
    return (
        [a for a in actions if a.id in kept_ids],
        kept_waits,
        kept_alerts,
        kept_drift,
        warnings,
    )
