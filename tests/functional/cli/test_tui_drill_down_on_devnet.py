"""The TUI attached to a real `poolkeeper run` on the devnet: a worker's drill-down shows
the loop's conditions (with the loop's transition times, as its control API streams
them), the extrinsics the loop recorded for it in the audit log, and, for a worker
relayed by an external program, the tail of that program's log."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.apply.audit import AUDIT_FILE, read_selected
from poolkeeper.control import ControlClient
from tests.tui.test_attach import forbid_the_loop, wait_until

from .test_run_loop import PHRASE, start_run, wait_for, workdir

__all__ = ["workdir"]

STAND_IN = Path(__file__).resolve().parents[1] / "relay" / "stand_in_pherry.py"
COMPUTING = {"rack-a-01", "rack-a-02", "rack-a-03", "rack-b-01", "rack-b-02", "rack-b-03"}


def relay_externally(inventory: Path, worker: str) -> None:
    """``worker`` (sync_only) relayed by the pherry stand-in: its output goes to a log."""
    path = inventory / "workers" / "rack-b.yaml"
    text = path.read_text()
    marker = f"  - name: {worker}\n"
    assert marker in text
    command = [
        sys.executable,
        str(STAND_IN),
        "--pruntime-endpoint",
        "{endpoint}",
        "--substrate-ws-endpoint",
        "{chain}",
        "--work-dir",
        "{work_dir}",
    ]
    flow = ", ".join(f'"{part}"' for part in command)
    path.write_text(text.replace(marker, marker + f"    relay: {{external_command: [{flow}]}}\n"))


def when(stamp: str) -> str:
    """An ISO time as the drill-down prints it."""
    return stamp[:19].replace("T", " ") + "Z"


async def _drill_down(workdir: Path) -> dict[str, Any]:
    from poolkeeper_tui._data import AttachedSource
    from poolkeeper_tui._screens import DrillDownScreen
    from poolkeeper_tui.app import build_app
    from tests.tui.test_drilldown_live import live_text

    sock = workdir / ".poolkeeper" / "control.sock"
    client = await ControlClient.connect(sock, timeout=10)
    try:
        # `status` observed convergence on its own; wait for a pass of the loop that did.
        async def computing() -> dict[str, Any]:
            async for _ in client.messages():
                conditions = client.view.rows["rack-a-01"]["conditions"]
                if conditions.get("Computing", {}).get("status") == "True":
                    return dict(conditions)
            raise AssertionError("the loop stopped serving")

        streamed = await asyncio.wait_for(computing(), 60)
    finally:
        await client.close()
    app = build_app([str(workdir / "inventory")])
    assert isinstance(app.source, AttachedSource)
    seen: dict[str, Any] = {"streamed": streamed}
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_until(lambda: app.frame is not None, 60)
        assert app.frame is not None and app.frame.conditions is not None
        await pilot.press("g", "enter")  # rack-a-01, the first row
        await wait_until(lambda: isinstance(app.screen, DrillDownScreen), 10)
        assert isinstance(app.screen, DrillDownScreen) and app.screen.key == "rack-a-01"
        seen["rack-a-01"] = live_text(app)
        await pilot.press("escape")
        await wait_until(lambda: not isinstance(app.screen, DrillDownScreen), 10)
        app.workers_table.move_cursor(row=app._shown_keys.index("rack-b-04"))
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, DrillDownScreen), 10)
        assert isinstance(app.screen, DrillDownScreen) and app.screen.key == "rack-b-04"
        seen["rack-b-04"] = live_text(app)
    return seen


def test_the_attached_drill_down_shows_the_loops_conditions_extrinsics_and_relay_log(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_externally(workdir / "inventory", "rack-b-04")
    loop = start_run(workdir)
    state_dir = workdir / ".poolkeeper"
    relay_log = state_dir / "relays" / "rack-b-04.log"
    try:
        wait_for(
            workdir,
            lambda r: all(r[w]["session_state"] == "WorkerIdle" for w in COMPUTING),
            150,
        )
        deadline = time.monotonic() + 30
        while "synced block" not in (relay_log.read_text() if relay_log.exists() else ""):
            assert time.monotonic() < deadline, "the stand-in relay logged nothing"
            time.sleep(0.5)
        with monkeypatch.context() as patched:
            forbid_the_loop(patched)  # attached: no reconciler, no relays in this process
            patched.setattr(
                "poolkeeper_tui._detail.ConditionHistory.derive",
                lambda *_: pytest.fail("attached, the drill-down derived conditions itself"),
            )
            seen = asyncio.run(_drill_down(workdir))
    finally:
        loop.send_signal(signal.SIGINT)
        code = loop.wait(60)
    output = (workdir / "run.log").read_text()
    assert code == 0, output

    # Conditions: the loop's, with its transition times (as its control API streams them).
    text = seen["rack-a-01"]
    streamed = seen["streamed"]
    shown = [" ".join(x.split()) for x in text.splitlines()]
    for kind in ("Synced", "Registered", "InPool", "Computing", "Healthy"):
        condition = streamed[kind]
        assert condition["status"] == "True", (kind, condition)
        expected = f"│ {kind} │ True │ {condition['reason']} │ "
        expected += when(condition["last_transition"])
        assert any(expected in x for x in shown), (expected, text)

    # Extrinsics: the loop's own, from the audit log it wrote for this worker: the
    # latest ones when the drill-down was drawn (the relay's egress goes on after).
    recorded = read_selected(state_dir / AUDIT_FILE, worker="rack-a-01").entries
    calls = {str(c.get("call")) for e in recorded for c in e.get("calls") or []}
    assert any("add_worker" in c for c in calls), calls
    hashes = [e["hash"] for e in recorded]
    listed = re.findall(r"^\S+\s+\S+\s+#\d+\s+(0x[0-9a-f]{64})\s*$", text, re.MULTILINE)
    assert listed, text
    start = hashes.index(listed[0])
    assert hashes[start : start + len(listed)] == listed
    assert len(listed) == min(10, start + len(listed)), "the latest 10 at the time"
    assert "rack-a-01" in text and "  ok" in text
    relay = shown[shown.index("Relay") + 1]
    assert relay.startswith("running"), relay  # rack-a-01 is relayed in-process

    # The external relay's log: what the stand-in printed, through the loop's supervisor.
    relay_text = seen["rack-b-04"]
    logged = set(relay_log.read_text().splitlines())
    tail = [x.strip() for x in relay_text.splitlines() if "synced block" in x]
    assert tail and all(x in logged for x in tail), tail
    assert "external, running (pid" in relay_text
    assert " ".join(PHRASE.split()[:2]) not in relay_text + text
