"""Which workers a ``--target`` run starts relays for."""

from __future__ import annotations

from poolkeeper.model.desired import Desired, PoolSpec, WorkerSpec, WorkerState
from poolkeeper.plan import targeted_workers


def _desired() -> Desired:
    return Desired(
        pools=(PoolSpec(name="a", pid=4, owner="o"), PoolSpec(name="b", pid=5, owner="o")),
        workers=(
            WorkerSpec(name="a1", endpoint="http://a1:8000", pool="a"),
            WorkerSpec(name="a2", endpoint="http://a2:8000", pool="a"),
            WorkerSpec(name="b1", endpoint="http://b1:8000", pool="b"),
            WorkerSpec(name="s1", endpoint="http://s1:8000", state=WorkerState.SYNC_ONLY),
        ),
    )


def test_worker_pool_and_pid_targets_select_their_workers_only() -> None:
    desired = _desired()
    assert targeted_workers(desired, ("worker/a2",)) == {"a2"}
    assert targeted_workers(desired, ("pool/a",)) == {"a1", "a2"}
    assert targeted_workers(desired, ("pool/5", "worker/s1")) == {"b1", "s1"}
    assert targeted_workers(desired, ("pool/zzz",)) == set()
