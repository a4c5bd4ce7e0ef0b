"""The devnet chain's fault knobs, over the admin RPC and at start: reject the next N
extrinsics with a given error, stop and resume block production, restart keeping or wiping
state, drop connections (once and periodically), delay responses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from substrateinterface import SubstrateInterface
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from poolkeeper_devnet.chain.server import DevnetChain, Faults
from tests._ports import free_port
from tests.functional.devnet.conftest import dev_key

ROOT = Path(__file__).resolve().parents[3]
PHA = 10**12


@pytest.fixture(scope="module")
def chain() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="manual", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def signed(chain: DevnetChain) -> dict[str, Any]:
    """Immortal transfers from //Alice with nonces 0, 1, 2 (valid again after a wipe, which
    keeps the genesis hash) and the storage key of //Bob's account."""
    substrate = SubstrateInterface(url=chain.url, ss58_format=30)
    try:
        bob = dev_key("Bob").ss58_address
        call = substrate.compose_call(
            "Balances", "transfer_keep_alive", {"dest": bob, "value": PHA}
        )
        transfers = [
            str(substrate.create_signed_extrinsic(call, dev_key("Alice"), nonce=n).data)
            for n in range(3)
        ]
        bob_key = substrate.create_storage_key("System", "Account", [bob]).to_hex()
        return {"transfers": transfers, "bob_key": bob_key}
    finally:
        substrate.close()


@pytest.fixture
def devnet(chain: DevnetChain) -> DevnetChain:
    """The module's chain, wiped back to genesis with no faults set."""
    url = http(chain)
    rpc(url, "devnet_restart", [False])
    rpc(url, "devnet_setBlockTime", ["manual"])
    rpc(url, "devnet_resumeBlocks")
    rpc(url, "devnet_setDelay", [0])
    rpc(url, "devnet_rejectNext", [0])
    rpc(url, "devnet_setDropEvery", [0])
    rpc(url, "devnet_failNext", [0])
    return chain


def rpc(url: str, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    answer: dict[str, Any] = httpx.post(url, json=body, timeout=10).json()
    return answer


def http(devnet: DevnetChain) -> str:
    return f"http://127.0.0.1:{devnet.port}"


def head(url: str) -> int:
    return int(rpc(url, "chain_getHeader")["result"]["number"], 16)


def test_reject_next_n_with_a_given_error_then_accept(
    devnet: DevnetChain, signed: dict[str, Any]
) -> None:
    url = http(devnet)
    error = {"code": 1014, "message": "Priority is too low: (0 vs 0)"}
    assert rpc(url, "devnet_rejectNext", [2, error])["result"] is True
    assert rpc(url, "devnet_status")["result"]["rejectNext"] == 2
    transfer = signed["transfers"][0]
    assert rpc(url, "author_submitExtrinsic", [transfer])["error"] == error
    assert rpc(url, "author_submitExtrinsic", [transfer])["error"] == error
    accepted = rpc(url, "author_submitExtrinsic", [transfer])
    assert accepted["result"].startswith("0x"), accepted
    assert rpc(url, "devnet_status")["result"]["rejectNext"] == 0
    # a data text stands for a 1010 Invalid Transaction
    rpc(url, "devnet_rejectNext", [1, "Transaction has a bad signature"])
    assert rpc(url, "author_submitExtrinsic", ["0x00"])["error"] == {
        "code": 1010,
        "message": "Invalid Transaction",
        "data": "Transaction has a bad signature",
    }


def test_fail_next_n_reads_with_a_json_rpc_error_then_answer(devnet: DevnetChain) -> None:
    url = http(devnet)
    assert rpc(url, "devnet_failNext", [2, "state_"])["result"] is True
    assert rpc(url, "devnet_status")["result"]["failNext"] == {"state_": 2}
    assert "result" in rpc(url, "chain_getHeader")  # other methods are not affected
    injected = {"code": -32000, "message": "Client error: injected fault"}
    assert rpc(url, "state_getRuntimeVersion")["error"] == injected
    assert rpc(url, "state_getMetadata")["error"] == injected
    assert "result" in rpc(url, "state_getRuntimeVersion")
    error = {"code": 4003, "message": "Client error: UnknownBlock", "data": "pruned"}
    rpc(url, "devnet_failNext", [1, "", error])
    assert rpc(url, "system_health")["error"] == error
    assert "result" in rpc(url, "system_health")


def test_pause_stops_block_production_and_resume_restarts_it(devnet: DevnetChain) -> None:
    url = http(devnet)
    rpc(url, "devnet_setBlockTime", ["50ms"])
    deadline = time.monotonic() + 10
    start = head(url)
    while head(url) < start + 2:
        assert time.monotonic() < deadline, "blocks were not produced every 50 ms"
        time.sleep(0.05)
    assert rpc(url, "devnet_pauseBlocks")["result"] is True
    time.sleep(0.1)  # a block being produced when pausing may still land
    paused_at = head(url)
    time.sleep(0.4)
    assert head(url) == paused_at
    assert rpc(url, "devnet_status")["result"]["paused"] is True
    # dev_newBlock still produces a block on request while paused
    assert rpc(url, "dev_newBlock", [{"count": 1}])["result"].startswith("0x")
    assert head(url) == paused_at + 1
    assert rpc(url, "devnet_resumeBlocks")["result"] is True
    deadline = time.monotonic() + 10
    while head(url) < paused_at + 3:
        assert time.monotonic() < deadline, "blocks did not resume"
        time.sleep(0.05)


def test_a_block_that_fails_to_build_is_counted_and_production_goes_on(
    devnet: DevnetChain,
) -> None:
    url = http(devnet)
    failed: list[int] = []

    def fail_once(number: int) -> dict[bytes, bytes | None]:
        if not failed:
            failed.append(number)
            raise RuntimeError("injected by the test")
        return {}

    devnet.chain.block_hooks.append(fail_once)
    try:
        rpc(url, "devnet_setBlockTime", ["50ms"])
        deadline = time.monotonic() + 10
        while not failed or head(url) < failed[0] + 2:
            assert time.monotonic() < deadline, "blocks stopped after a failed one"
            time.sleep(0.05)
        status = rpc(url, "devnet_status")["result"]
        assert status["productionFailures"] == 1, status
        assert status["lastProductionError"] == "RuntimeError: injected by the test"
    finally:
        rpc(url, "devnet_setBlockTime", ["manual"])
        devnet.chain.block_hooks.remove(fail_once)


def test_restart_keeping_state_drops_connections_and_the_pool(
    devnet: DevnetChain, signed: dict[str, Any]
) -> None:
    url = http(devnet)
    genesis_bob = rpc(url, "state_getStorage", [signed["bob_key"]])["result"]
    first, _, future = signed["transfers"]
    assert "result" in rpc(url, "author_submitExtrinsic", [first])
    rpc(url, "dev_newBlock", [{"count": 1}])
    assert "result" in rpc(url, "author_submitExtrinsic", [future])  # nonce 2: waits
    assert len(rpc(url, "author_pendingExtrinsics")["result"]) == 1
    bob = rpc(url, "state_getStorage", [signed["bob_key"]])["result"]
    assert bob != genesis_bob
    number = head(url)
    with connect(devnet.url) as ws:
        ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "devnet_restart", "params": [True]})
        )
        assert json.loads(ws.recv(timeout=10))["result"].startswith("0x")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert head(url) == number
    assert rpc(url, "author_pendingExtrinsics")["result"] == []
    assert rpc(url, "system_accountNextIndex", [dev_key("Alice").ss58_address])["result"] == 1
    assert rpc(url, "state_getStorage", [signed["bob_key"]])["result"] == bob  # block 1 kept


def test_restart_wiping_state_goes_back_to_genesis(
    devnet: DevnetChain, signed: dict[str, Any]
) -> None:
    url = http(devnet)
    genesis = rpc(url, "chain_getBlockHash", [0])["result"]
    genesis_bob = rpc(url, "state_getStorage", [signed["bob_key"]])["result"]
    transfer = signed["transfers"][0]
    rpc(url, "author_submitExtrinsic", [transfer])
    rpc(url, "dev_newBlock", [{"count": 3}])
    assert head(url) == 3
    assert rpc(url, "devnet_restart", [False])["result"] == genesis
    assert head(url) == 0
    assert rpc(url, "chain_getBlockHash", [0])["result"] == genesis
    assert rpc(url, "system_accountNextIndex", [dev_key("Alice").ss58_address])["result"] == 0
    assert rpc(url, "state_getStorage", [signed["bob_key"]])["result"] == genesis_bob
    # the same signed transfer is valid again on the wiped chain
    assert "result" in rpc(url, "author_submitExtrinsic", [transfer])


def _recv_until_closed(ws: ClientConnection, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "system_name"}))
            ws.recv(timeout=1)
            time.sleep(0.05)
    except (ConnectionClosed, TimeoutError):
        return True
    return False


def test_drop_connections_once_and_periodically(devnet: DevnetChain) -> None:
    url = http(devnet)
    with connect(devnet.url) as ws, httpx.Client(timeout=10) as keep_alive:
        keep_alive.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "system_name"})
        dropped = rpc(url, "devnet_dropConnections")["result"]
        assert dropped >= 2  # the websocket and the keep-alive HTTP connection (and this one)
        assert _recv_until_closed(ws, 5)
    assert rpc(url, "devnet_setDropEvery", [0.3])["result"] is True
    with connect(devnet.url) as ws:
        assert _recv_until_closed(ws, 5), "the periodic drop did not come"
    for _ in range(5):  # a periodic drop may cut this very request: ask again
        try:
            rpc(url, "devnet_setDropEvery", [0])
            break
        except httpx.TransportError:
            continue
    with connect(devnet.url) as ws:
        assert not _recv_until_closed(ws, 1)


def test_delay_applies_to_every_answer(devnet: DevnetChain) -> None:
    url = http(devnet)
    # A delay far above a loaded machine's round trip (two busy cores can take a few hundred
    # ms to answer): the lower bound proves the delay, the upper bound its removal.
    rpc(url, "devnet_setDelay", [2000])
    started = time.monotonic()
    rpc(url, "system_chain")
    assert time.monotonic() - started >= 2.0
    rpc(url, "devnet_setDelay", [0])
    started = time.monotonic()
    rpc(url, "system_chain")
    assert time.monotonic() - started < 2.0


def test_faults_given_at_start() -> None:
    faults = Faults(delay_ms=100, reject_next=1, paused=True)
    with DevnetChain.start("dev", block_time=0.05, faults=faults) as devnet:
        url = http(devnet)
        status = rpc(url, "devnet_status")["result"]
        assert (status["delayMs"], status["rejectNext"], status["paused"]) == (100, 1, True)
        time.sleep(0.3)
        assert head(url) == 0  # paused from the start: not even block #1
        assert rpc(url, "author_submitExtrinsic", ["0x00"])["error"]["code"] == 1010


def test_command_line_fault_flags() -> None:
    port = free_port()
    error = json.dumps({"code": 1012, "message": "Transaction is temporarily banned"})
    command = [sys.executable, "-m", "poolkeeper_devnet.chain", "--port", str(port)]
    command += ["--genesis", "dev", "--paused", "--delay-ms", "50", "--reject-next", "2"]
    command += ["--reject-error", error, "--drop-every", "30"]
    proc = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                status = rpc(url, "devnet_status")["result"]
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "devnet chain did not listen"
                time.sleep(0.3)
        assert status["paused"] is True
        assert (status["delayMs"], status["rejectNext"]) == (50, 2)
        assert status["dropEverySeconds"] == 30
        assert rpc(url, "author_submitExtrinsic", ["0x00"])["error"] == json.loads(error)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
