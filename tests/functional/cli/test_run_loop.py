"""`poolkeeper run` end to end: devnet up, the loop converges, an inventory edit is picked
up (a worker marked `removed` is stopped, cooled down, reclaimed and removed), Ctrl-C stops
cleanly, devnet down leaves no process. Everything goes through the CLI as an operator would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._ports import free_port_run

ROOT = Path(__file__).resolve().parents[3]
PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def env() -> dict[str, str]:
    return {**os.environ, "POOLKEEPER_MNEMONIC": PHRASE, "PYTHONPATH": str(ROOT / "src")}


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolkeeper", *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    chain_port, *pr_ports = free_port_run(9)
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    for path in inventory.rglob("*.yaml"):
        text = path.read_text()
        text = text.replace("ws://127.0.0.1:9944", f"ws://127.0.0.1:{chain_port}")
        for i in range(8):
            text = text.replace(f"http://127.0.0.1:{8100 + i}", f"http://127.0.0.1:{pr_ports[i]}")
        text = text.replace("interval_seconds: 30", "interval_seconds: 2")
        path.write_text(text)
    up = cli(
        "devnet",
        "up",
        "inventory",
        "--state-dir",
        "devnet",
        "--cool-down",
        "4",
        cwd=tmp_path,
        timeout=240,
    )
    assert up.returncode == 0, up.stderr
    try:
        yield tmp_path
    finally:
        down = cli("devnet", "down", "--state-dir", "devnet", cwd=tmp_path)
        assert down.returncode == 0, down.stderr


def status(cwd: Path) -> dict[str, dict[str, object]]:
    out = cli("status", "inventory", "--json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return {w["worker"]: w for w in json.loads(out.stdout)["workers"]}


def wait_for(cwd: Path, check: object, seconds: float) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + seconds
    rows: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        rows = status(cwd)
        if check(rows):  # type: ignore[operator]
            return rows
        time.sleep(2)
    raise AssertionError(f"not reached in {seconds}s: {json.dumps(rows, indent=1)}")


def start_run(workdir: Path) -> subprocess.Popen[bytes]:
    """``poolkeeper run inventory`` in ``workdir``, its output going to ``run.log``."""
    with (workdir / "run.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "poolkeeper", "run", "inventory"],
            cwd=workdir,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def test_run_converges_follows_an_edit_and_stops_cleanly(workdir: Path) -> None:
    loop = start_run(workdir)
    try:
        computing = {"rack-a-01", "rack-a-02", "rack-a-03", "rack-b-01", "rack-b-02", "rack-b-03"}
        rows = wait_for(
            workdir,
            lambda r: all(r[w]["session_state"] == "WorkerIdle" for w in computing),
            150,
        )
        assert rows["rack-a-04"]["session_state"] == "Ready"  # declared idle
        rack_a = workdir / "inventory" / "workers" / "rack-a.yaml"
        text = rack_a.read_text()
        marker = "  - name: rack-a-03\n    endpoint:"
        assert marker in text
        head, tail = text.split(marker, 1)
        first_line_end = tail.index("\n")
        tail = tail[: first_line_end + 1] + "    state: removed\n" + tail[first_line_end + 1 :]
        tail = tail.replace(
            "    pool: pool-a                      # state defaults to computing\n",
            "    pool: pool-a\n",
            1,
        )
        rack_a.write_text(head + marker + tail)
        rows = wait_for(
            workdir,
            lambda r: (
                r["rack-a-03"]["session_state"] is None
                and r["rack-a-03"]["phase"] not in ("Computing", "CoolingDown", "Ready")
            ),
            120,
        )
        assert rows["rack-a-01"]["session_state"] == "WorkerIdle"  # the others are untouched
    finally:
        loop.send_signal(signal.SIGINT)
        code = loop.wait(60)
    output = (workdir / "run.log").read_text()
    assert code == 0, output
    assert "inventory changed: reloaded" in output
    assert output.rstrip().endswith("stopped")
    assert PHRASE.split(maxsplit=1)[0] + " " + PHRASE.split()[1] not in output
