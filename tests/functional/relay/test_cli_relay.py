"""``poolkeeper relay DIR`` as a subprocess: relays for the inventory until SIGINT, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.functional.relay.test_relays_on_devnet import DEV_PHRASE, start_world


def test_relay_command_syncs_workers_and_stops_on_sigint(tmp_path: Path) -> None:
    inventory, chain, sim = start_world(tmp_path, 2, b"cli-relay")
    src = Path(__file__).resolve().parents[3] / "src"
    env = dict(os.environ, POOLKEEPER_TEST_NO_SUCH_VAR=DEV_PHRASE, PYTHONPATH=str(src))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "poolkeeper", "relay", str(inventory), "--interval", "0.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                if all(sim.worker(i).initialized and sim.worker(i).blocknum > 3 for i in range(2)):
                    break
                time.sleep(0.2)
            synced = [sim.worker(i).blocknum for i in range(2)]
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
        assert all(n > 3 for n in synced), (synced, output)
        assert process.returncode == 0, output
        assert "relaying for 2 worker(s)" in output
        assert "relays stopped" in output
    finally:
        sim.stop()
        chain.stop()
