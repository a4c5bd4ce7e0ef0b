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


def _rpc(url: str, method: str, params: list[object]) -> object:
    ws = websocket.create_connection(url, timeout=10)
    try:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        return json.loads(ws.recv())["result"]
    finally:
        ws.close()


def test_devnet_up_parachain_serves_a_relay_chain_beside_the_parachain(tmp_path: Path) -> None:
    chain_port, relay_port, *worker_ports = free_port_run(10)
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", inventory)
    for path in inventory.rglob("*.yaml"):
        text = path.read_text().replace(
            "      - ws://127.0.0.1:9944\n",
            f"      - ws://127.0.0.1:{chain_port}\n"
            f"    relaychain_endpoints:\n      - ws://127.0.0.1:{relay_port}\n",
        )
        for i in range(8):
            text = text.replace(
                f"http://127.0.0.1:{8100 + i}", f"http://127.0.0.1:{worker_ports[i]}"
            )
        path.write_text(text)
    state_dir = tmp_path / "devnet"
    command = [sys.executable, "-m", "poolkeeper", "devnet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POOLKEEPER_MNEMONIC": PHRASE}
    up = subprocess.run(
        [
            *command,
            "up",
            str(inventory),
            "--state-dir",
            str(state_dir),
            "--parachain",
            "--runtime",
            "phala",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"relay chain ws://127.0.0.1:{relay_port}" in up.stdout
        para_url, relay_url = f"ws://127.0.0.1:{chain_port}", f"ws://127.0.0.1:{relay_port}"
        deadline = time.monotonic() + 30
        while int(str(_rpc(para_url, "chain_getHeader", [])["number"]), 16) < 1:  # type: ignore[index]
            assert time.monotonic() < deadline, "the parachain produced no block"
            time.sleep(0.3)
        # Paras.Heads(2035) on the relay chain holds a parachain header.
        key = (
            "0xcd710b30bd2eab0352ddcc26417aa1941b3c252fcb29d88eff4f3de5de4476c3"
            "160394315fe95b98f3070000"
        )
        head = _rpc(relay_url, "state_getStorage", [key])
        # Bytes(header): a 2-byte length prefix, then parent hash, number, roots, digest.
        assert isinstance(head, str)
        raw = bytes.fromhex(head[2:])
        assert int.from_bytes(raw[:2], "little") >> 2 == len(raw) - 2 >= 32 + 1 + 64 + 1
        assert _rpc(para_url, "system_chain", []) != _rpc(relay_url, "system_chain", [])
        # --runtime phala: Phala's runtime version and pallet indices (PhalaStakePoolv2 89)
        assert _rpc(para_url, "state_getRuntimeVersion", [])["specName"] == "phala"  # type: ignore[index]
        metadata = bytes.fromhex(str(_rpc(para_url, "state_getMetadata", []))[2:])
        assert _pallet_index(metadata, "PhalaStakePoolv2") == 89
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
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", relay_port)) != 0, "the relay chain was left"


def _pallet_index(metadata: bytes, pallet: str) -> int:
    from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
    from scalecodec.type_registry import load_type_registry_preset

    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    decoded = config.create_scale_object("MetadataVersioned", data=ScaleBytes(metadata))
    decoded.decode()
    (index,) = [p["index"] for p in decoded.value[1]["V14"]["pallets"] if p["name"] == pallet]
    return int(index)
