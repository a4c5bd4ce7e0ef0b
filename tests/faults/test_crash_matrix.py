"""``apply`` killed at every crash point, blocks flowing or paused, for pool calls and top-ups.

Each case starts ``poolkeeper apply`` (a subprocess, as an operator runs it) with the
test hook ``POOLKEEPER_TEST_CRASH_AT`` (``poolkeeper._crash_points``) so it dies by
SIGKILL at one instant: journaled but not sent, sent but inclusion not seen, inclusion
seen but not journaled. In the *paused* variant the devnet makes no blocks from before
the crash until the second ``apply`` has started, so that apply finds its predecessor's
extrinsic still in the pool (the case that used to send everything again); the blocks
resume while it runs. Judged on the chain's blocks, read over RPC: every call and
transfer of the case is there exactly once, the daily top-up cap holds, and the world
converged (the worker computes; the account holds its target).

One world serves every case: six registered idle workers (each pool case starts one of
them computing) and a funding account (each top-up case adds an empty account to keep at
100 PHA, at most 150 PHA a day: a second transfer would break the cap).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from poolkeeper.apply.journal import Journal
from poolkeeper.chain import SubstrateChain
from poolkeeper.inventory import load_inventory
from poolkeeper.keys import KeyRing, Mnemonic
from poolkeeper.model.observed import SessionState
from poolkeeper.model.ss58 import decode_address
from tests.faults._faults import (
    Lines,
    best_number,
    calls_in_blocks,
    counted,
    pool_holds,
    rpc,
    start_apply,
    transfers_to,
    wait_for,
)
from tests.functional.apply._world import ACCOUNTS, PHRASE, World

PHA = 10**12
WORKERS = 6
FUNDING = (
    "  - {name: funding, role: funding, derivation: funding,"
    " warn_below: 1000 PHA, critical_below: 100 PHA}\n"
)
POINTS = ("before_submit:1", "after_submit:1", "before_settle:1")
MODES = ("flowing", "paused")
FAST = {("after_submit:1", "paused")}
"""The issue's case runs in the quick suite; the rest of the matrix is marked slow."""


def top_up_account(k: int) -> str:
    return (
        f"  - {{name: tu-{k}, role: watch, derivation: top-up//{k},"
        " top_up: {from: funding, to: 100 PHA, max_per_day: 150 PHA}}\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(
        tmp_path_factory.mktemp("faults"),
        WORKERS,
        block_time=0.3,
        cool_down=3,
        accounts=ACCOUNTS + FUNDING,
        # No heartbeat challenges: the only extrinsics of a case are its own.
        phala={"heartbeat_interval": 100_000, "unresponsive_after": 100_000},
    )
    try:
        for worker in w.workers:
            worker.state = "idle"
        w.write_workers()
        w.apply(wait=90)
        yield w
    finally:
        w.close()


def matrix() -> list[object]:
    cases: list[object] = []
    for kind in ("pool", "top_up"):
        for mode in MODES:
            for point in POINTS:
                marks = [] if (point, mode) in FAST else [pytest.mark.slow]
                cases.append(
                    pytest.param(kind, point, mode, marks=marks, id=f"{kind}-{point}-{mode}")
                )
    return cases


_next_case = iter(range(100))


def crash_then_apply(world: World, point: str, paused: bool, module: str) -> str:
    """The crashing apply, then a clean one (blocks resumed while it runs); its output."""
    url = world.chain.url
    first: subprocess.Popen[str] | None = None
    if paused:
        rpc(url, "devnet_pauseBlocks")
    try:
        first = start_apply(world, crash_at=point)
        if paused:
            wait_for(
                lambda: first.poll() is not None or pool_holds(world.chain, module),
                60,
                "the crashing apply to submit",
            )
            time.sleep(0.5)
            if first.poll() is None:  # before_settle: it waits for a block
                rpc(url, "devnet_resumeBlocks")
                paused = False
        out, _ = first.communicate(timeout=90)
        assert first.returncode == -signal.SIGKILL, out[-3000:]
        second = start_apply(world)
        lines = Lines(second)
        if paused:
            # Resume only once it recovered, planned and had a pass with the blocks
            # still paused: the extrinsic of the crashed apply is then still in the pool.
            wait_for(lambda: lines.has("Plan:") or lines.has("No changes"), 60, "the plan")
            time.sleep(1.5)
            assert second.poll() is None, lines.text()[-3000:]
            rpc(url, "devnet_resumeBlocks")
            paused = False
        second.wait(timeout=120)
        out = lines.text()
        assert second.returncode == 0, f"{out[-4000:]}\ndevnet: {rpc(url, 'devnet_status')}"
        return out
    finally:
        if paused:
            rpc(url, "devnet_resumeBlocks")
        if first is not None and first.poll() is None:
            first.kill()


@pytest.mark.parametrize(("kind", "point", "mode"), matrix())
def test_crash_point_leaves_no_duplicate_and_converges(
    world: World, kind: str, point: str, mode: str
) -> None:
    k = next(_next_case)
    start = best_number(world.chain.url)
    assert rpc(world.chain.url, "devnet_status")["productionFailures"] == 0
    if kind == "pool":
        index = _first_idle(world)
        world.workers[index].state = "computing"
        world.write_workers()
        crash_then_apply(world, point, mode == "paused", "PhalaStakePoolv2")
        calls = counted(calls_in_blocks(world.chain, start), {"PhalaStakePoolv2", "PhalaRegistry"})
        started = [c for c in calls if '"start_computing"' in c]
        assert len(started) == 1, calls
        assert all(n == 1 for n in calls.values()), calls
        pubkey = world.sim.simulator.identity(index).public.hex()
        worker = world.chain_state().workers[pubkey]
        assert worker.session_state is SessionState.WORKER_IDLE, worker
    else:
        accounts = world.inventory / "accounts.yaml"
        accounts.write_text(accounts.read_text(encoding="utf-8") + top_up_account(k), "utf-8")
        crash_then_apply(world, point, mode == "paused", "Balances")
        address = _address(world, f"tu-{k}")
        sent = transfers_to(world.chain, decode_address(address)[1].hex(), start)
        assert sent == [100 * PHA], sent  # one transfer; two would exceed 150 PHA a day
        balance = _free(world, address)
        assert balance == 100 * PHA, balance
        # The journal counts it against the day's cap exactly once, crash or not.
        journal = Journal(world.state_dir / "journal.sqlite")
        try:
            counted_today = journal.topped_up_on(datetime.now(UTC).strftime("%Y-%m-%d"))
        finally:
            journal.close()
        assert counted_today.get(address) == 100 * PHA, counted_today


def _first_idle(world: World) -> int:
    for i, w in enumerate(world.workers):
        if w.state == "idle":
            return i
    raise AssertionError("no idle worker left for another pool case")


def _address(world: World, name: str) -> str:
    desired = load_inventory(world.inventory)
    return KeyRing(desired, Mnemonic(PHRASE)).address(name)


def _free(world: World, address: str) -> int:
    async def read() -> int:
        adapter = SubstrateChain(world.chain.url)
        try:
            state = await adapter.read_state((), (address,))
        finally:
            await adapter.close()
        return state.accounts[address].free

    return asyncio.run(read())


def test_apply_with_blocks_paused_reports_the_extrinsic_in_flight(world: World) -> None:
    """Blocks stay paused past ``--wait``: apply says what is in flight, exits 1, sends
    nothing twice; the next apply (blocks flowing) finishes it."""
    k = next(_next_case)
    start = best_number(world.chain.url)
    assert rpc(world.chain.url, "devnet_status")["productionFailures"] == 0
    accounts = world.inventory / "accounts.yaml"
    accounts.write_text(accounts.read_text(encoding="utf-8") + top_up_account(k), "utf-8")
    rpc(world.chain.url, "devnet_pauseBlocks")
    try:
        first = start_apply(world, wait=4, crash_at="after_submit:1")
        out, _ = first.communicate(timeout=90)
        assert first.returncode == -signal.SIGKILL, out[-3000:]
        second = start_apply(world, wait=4)
        lines = Lines(second)
        second.wait(timeout=90)
        out = lines.text()
    finally:
        rpc(world.chain.url, "devnet_resumeBlocks")
    assert second.returncode == 1, out[-3000:]
    assert f"still in flight (not sent again): top_up:account/tu-{k}" in out, out[-3000:]
    assert "Traceback" not in out
    world.apply(wait=30)
    dest = decode_address(_address(world, f"tu-{k}"))[1].hex()
    assert transfers_to(world.chain, dest, start) == [100 * PHA]
