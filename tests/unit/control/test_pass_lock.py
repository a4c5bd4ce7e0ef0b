"""Passes of one ``Reconciler`` never interleave (the loop's and the control requests'),
and an inventory reloaded during a pass is adopted only when the pass is over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import build_reconciler
from poolkeeper.inventory import load_inventory
from poolkeeper.loop import PassResult
from poolkeeper.model.actions import Plan
from poolkeeper.observe.snapshot import load_snapshot
from poolkeeper.plan import PlanPolicy

ROOT = Path(__file__).resolve().parents[3]


async def test_passes_are_serialized_and_reloads_wait_for_the_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired = load_inventory(ROOT / "inventory")
    rec = build_reconciler(desired, mnemonic=None, state_dir=tmp_path)
    observed = load_snapshot(ROOT / "examples" / "observed-devnet-fresh.json")
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    seen_desired: list[Any] = []
    release = asyncio.Event()

    async def fake_pass(
        policy: PlanPolicy, *, execute: bool = True, only: Plan | None = None
    ) -> PassResult:
        name = "loop" if execute else "request"
        running.append(name)
        if len(running) > 1:
            overlaps.append(tuple(running))
        seen_desired.append(rec.desired)
        if execute:
            await release.wait()
        running.remove(name)
        return PassResult(observed, Plan(block=1))

    monkeypatch.setattr(rec, "_reconcile_once", fake_pass)
    started: list[bool] = []
    rec.on_pass_start = started.append
    try:
        loop_pass = asyncio.create_task(rec.reconcile_once(PlanPolicy()))
        await asyncio.sleep(0.01)
        request = asyncio.create_task(rec.reconcile_once(PlanPolicy(), execute=False))
        reloaded = desired.model_copy(update={"workers": desired.workers[:1]})
        rec.set_desired(reloaded)
        await asyncio.sleep(0.05)
        assert not request.done(), "the request waits for the loop's pass"
        assert len(rec.desired.workers) == len(desired.workers), "not adopted mid-pass"
        release.set()
        await asyncio.gather(loop_pass, request)
        assert overlaps == []
        assert started == [True, False]
        assert len(seen_desired[0].workers) == len(desired.workers)
        assert len(seen_desired[1].workers) == 1, "adopted before the next pass"
    finally:
        await rec.close()
