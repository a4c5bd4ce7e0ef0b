"""What poolkeeper creates is its owner's only: state dir 0700; lock, journal (with its
WAL and shared-memory files), saved plans and devnet logs 0600. An existing state dir
that others can read is narrowed, with a notice.

The CLI runs as a subprocess (its umask is set at entry) against the devnet.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolkeeper.apply.statedir import StateDirLock
from tests._ports import free_port_run
from tests.functional.apply._world import PHRASE, World

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("modes"), 2, block_time=0.3, cool_down=3)
    try:
        yield w
    finally:
        w.close()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_running_writer_keeps_its_state_private_and_narrows_a_0755_state_dir(
    world: World,
) -> None:
    world.state_dir.mkdir(mode=0o755)
    world.state_dir.chmod(0o755)
    assert mode(world.state_dir) == 0o755
    run = subprocess.Popen(
        world.command("run", str(world.inventory)),
        env=world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        journal = world.state_dir / "journal.sqlite"
        wal, shm = (journal.with_name(journal.name + s) for s in ("-wal", "-shm"))
        files = (journal, wal, shm, world.state_dir / "lock", world.state_dir / "journal.id")
        while not (all(p.exists() for p in files) and StateDirLock.holder_of(world.state_dir)):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "run never opened its journal"
            time.sleep(0.05)
        time.sleep(0.5)  # the marker is written right after the journal is created
        modes = {p.name: oct(mode(p)) for p in files}
        assert set(modes.values()) == {"0o600"}, modes
        assert mode(world.state_dir) == 0o700
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    assert f"notice: state dir {world.state_dir} was mode 0755; now 0700" in err, err
    assert run.returncode == 0, err


def test_saved_plans_are_0600_even_over_an_existing_0644_file(world: World) -> None:
    fresh, existing = world.root / "fresh.json", world.root / "existing.json"
    existing.write_text("{}")
    existing.chmod(0o644)
    for target in (fresh, existing):
        done = subprocess.run(
            world.command("plan", str(world.inventory), "-o", str(target)),
            env=world.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode in (0, 2), done.stderr
        assert mode(target) == 0o600, (target, oct(mode(target)))
        assert target.read_text().startswith("{\n")


def test_devnet_logs_are_private_even_when_they_existed_before(tmp_path: Path) -> None:
    chain_port, *worker_ports = free_port_run(9)
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    for path in inventory.rglob("*.yaml"):
        text = path.read_text().replace("ws://127.0.0.1:9944", f"ws://127.0.0.1:{chain_port}")
        for i in range(8):
            text = text.replace(
                f"http://127.0.0.1:{8100 + i}", f"http://127.0.0.1:{worker_ports[i]}"
            )
        path.write_text(text)
    state_dir = tmp_path / ".poolkeeper" / "devnet"
    state_dir.mkdir(parents=True)
    old_log = state_dir / "chain.log"
    old_log.write_text("an earlier run\n")
    old_log.chmod(0o644)
    command = [sys.executable, "-m", "poolkeeper", "devnet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POOLKEEPER_MNEMONIC": PHRASE}
    up = subprocess.run(
        [*command, "up", str(inventory), "--state-dir", str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        logs = sorted(state_dir.glob("*.log"))
        # the chain's, and the pRuntime simulator's (one process serves every port)
        assert "chain.log" in {p.name for p in logs} and len(logs) >= 2, logs
        assert {p.name: oct(mode(p)) for p in logs} == {p.name: "0o600" for p in logs}
        assert mode(state_dir / "devnet.json") == 0o600
    finally:
        down = subprocess.run(
            [*command, "down", "--state-dir", str(state_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert down.returncode == 0, down.stderr
