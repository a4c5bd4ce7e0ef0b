"""`poolkeeper devnet chain` serves the chain simulator in the foreground, over a websocket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parents[3]


def test_devnet_chain_command_answers_json_rpc() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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
