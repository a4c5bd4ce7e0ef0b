"""The control API of `poolkeeper run` on the devnet: a client attaches, its snapshot rows
match `status`, `plan` and `reload` are served between passes, an apply made from an
inventory changed on disk is refused, `status --watch` follows the loop, and the socket
is gone when the loop stops."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from poolkeeper.app import inventory_digest
from poolkeeper.control import ControlClient
from poolkeeper.control.client import RequestFailed
from tests.tui.test_attach import forbid_the_loop, wait_until

from .test_run_loop import PHRASE, cli, env, start_run, status, wait_for, workdir

__all__ = ["workdir"]

COMPARED = ("worker", "pool", "desired", "phase", "session_state", "stake", "initial_score")
COMPUTING = {"rack-a-01", "rack-a-02", "rack-a-03", "rack-b-01", "rack-b-02", "rack-b-03"}


async def _exercise(sock: Path, workdir: Path) -> dict[str, Any]:
    client = await ControlClient.connect(sock, timeout=10)
    try:
        async for message in client.messages():  # a pass after convergence: fresh rows
            if message.get("event") == "pass_done":
                break
        rows = {name: {k: r.get(k) for k in COMPARED} for name, r in client.view.rows.items()}
        seen: dict[str, Any] = {
            "hello": client.hello,
            "rows": rows,
            "secret_loaded": client.view.secret_loaded,
        }
        seen["status"] = status(workdir)
        started = time.monotonic()
        plan = await client.plan(timeout=120)
        seen["plan"] = plan
        seen["plan_seconds"] = time.monotonic() - started
        settings = workdir / "inventory" / "settings.yaml"
        settings.write_text(settings.read_text() + "\n# edited by the test\n")
        with pytest.raises(RequestFailed, match="changed on disk"):
            await client.apply(
                [a["id"] for a in plan["plan"]["actions"]],
                inventory_digest=plan["inventory_digest"],
                plan_seq=plan["plan_seq"],
                timeout=60,
            )
        seen["reload"] = await client.reload(timeout=120)
        return seen
    finally:
        await client.close()


async def _tui_attached(workdir: Path, expected: dict[str, dict[str, Any]]) -> list[str]:
    """The TUI against the running loop: attached, rows as `status` shows, `r` reloads."""
    from poolkeeper_tui._data import AttachedSource
    from poolkeeper_tui.app import build_app

    app = build_app([str(workdir / "inventory")])
    assert isinstance(app.source, AttachedSource)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.workers_table
        await wait_until(lambda: app.frame is not None and table.row_count == len(expected), 60)
        for name, row in expected.items():
            assert table.get_cell(name, "phase") == row["phase"], name
        await pilot.press("r")
        lines: list[str] = []

        def reloaded() -> bool:
            lines[:] = [str(x) for x in app.query_one("#log").lines]  # type: ignore[attr-defined]
            return any("inventory reloaded" in x for x in lines)

        await wait_until(reloaded, 120)
        return lines


def test_a_client_attaches_to_run_and_status_watch_follows_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = workdir / ".poolkeeper" / "control.sock"
    watch_before = cli("status", "inventory", "--watch", cwd=workdir)
    assert watch_before.returncode == 1
    assert "no poolkeeper run serves" in watch_before.stderr
    loop = start_run(workdir)
    try:
        wait_for(
            workdir,
            lambda r: all(r[w]["session_state"] == "WorkerIdle" for w in COMPUTING),
            150,
        )
        assert sock.exists() and (sock.stat().st_mode & 0o777) == 0o600
        seen = asyncio.run(_exercise(sock, workdir))
        assert seen["hello"]["format_version"] == 1
        assert seen["secret_loaded"] is True
        by_status = {n: {k: r.get(k) for k in COMPARED} for n, r in seen["status"].items()}
        assert seen["rows"] == by_status
        assert seen["plan"]["plan"]["format_version"] == 1
        assert seen["reload"]["inventory_digest"] == inventory_digest(workdir / "inventory")
        assert seen["reload"]["plan_seq"] > seen["plan"]["plan_seq"]

        with monkeypatch.context() as patched:
            forbid_the_loop(patched)  # attached: no reconciler, no relays in this process
            log_lines = asyncio.run(_tui_attached(workdir, status(workdir)))
        assert any("pass at #" in line for line in log_lines)

        watch = subprocess.Popen(
            [sys.executable, "-m", "poolkeeper", "status", "inventory", "--watch"],
            cwd=workdir,
            env={**env(), "PYTHONFAULTHANDLER": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert watch.stdout is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = watch.stdout.readline()
                lines.append(line)
                if line.startswith("plan:") and sum(x.startswith("plan:") for x in lines) >= 2:
                    break  # the snapshot, then a pass streamed
            text = "".join(lines)
            assert sum(x.startswith("plan:") for x in lines) >= 2, text
            assert "rack-a-01" in text and "WorkerIdle" in text
        finally:
            watch.send_signal(signal.SIGINT)
            # Read what it still prints: a full pipe nobody reads blocks its writes, and
            # with them its exit (the cause of a timeout seen under load).
            try:
                watch.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                watch.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack
                _, stacks = watch.communicate(timeout=10)
                raise AssertionError(f"status --watch outlived SIGINT by 30 s:\n{stacks}") from None
            assert watch.returncode == 0
    finally:
        loop.send_signal(signal.SIGINT)
        code = loop.wait(60)
    output = (workdir / "run.log").read_text()
    assert code == 0, output
    assert not sock.exists(), "the socket is removed on exit"
    assert " ".join(PHRASE.split()[:2]) not in output
