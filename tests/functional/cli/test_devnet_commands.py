"""`poolkeeper devnet chain` serves the chain simulator in the foreground, over a websocket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import websocket

from tests._ports import free_port, free_port_run

ROOT = Path(__file__).resolve().parents[3]
PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def test_devnet_chain_command_answers_json_rpc() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poolkeeper",
            "devnet",
            "chain",
            "--port",
            str(port),
            "--genesis",
            "dev",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ws = websocket.create_connection(f"ws://127.0.0.1:{port}", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "devnet chain did not listen"
                time.sleep(0.3)
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system_chain", "params": []}))
        assert json.loads(ws.recv())["result"] == "Khala Devnet"
        ws.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_devnet_up_fails_fast_and_cleans_up_when_a_simulator_cannot_bind(tmp_path: Path) -> None:
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
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", worker_ports[3]))
        squatter.listen()
        started = time.monotonic()
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "poolkeeper",
                "devnet",
                "up",
                str(inventory),
                "--state-dir",
                str(tmp_path / "devnet"),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "POOLKEEPER_MNEMONIC": PHRASE},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert up.returncode == 1, up.stdout + up.stderr
    assert "exited during start-up" in up.stderr, up.stderr
    assert "address already in use" in up.stderr.lower(), up.stderr
    assert elapsed < 100, f"took {elapsed:.0f}s: the 120 s readiness wait was not cut short"
    assert not (tmp_path / "devnet" / "devnet.json").exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", chain_port)) != 0, "the chain simulator was left"
