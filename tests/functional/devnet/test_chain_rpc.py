"""The devnet chain's JSON-RPC surface: node-like errors for garbage (fuzzed), fault knobs,
and the storage-change / state-root contract of docs/devnet-wire.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from substrateinterface import SubstrateInterface
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from poolkeeper_devnet.chain._storage import state_root_of
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.codec import decode_bytes, decode_compact
from tests.functional.devnet.conftest import dev_key


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="manual", finality_lag=2)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def ws(devnet: DevnetChain) -> Iterator[ClientConnection]:
    with connect(devnet.url, max_size=2**26) as connection:
        yield connection


_ids = iter(range(1, 10**9))


def rpc(ws: ClientConnection, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    request_id = next(_ids)
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message.get("id") == request_id:
            return dict(message)


def test_malformed_json_and_unknown_methods(ws: ClientConnection) -> None:
    ws.send("{not json")
    assert json.loads(ws.recv(timeout=5))["error"]["code"] == -32700
    ws.send(json.dumps({"jsonrpc": "2.0", "id": 7}))
    assert json.loads(ws.recv(timeout=5))["error"]["code"] == -32600
    assert rpc(ws, "no_suchMethod")["error"]["code"] == -32601
    assert rpc(ws, "state_getStorage", ["zz"])["error"]["code"] == -32602
    assert rpc(ws, "chain_getHeader", ["0x" + "00" * 32])["result"] is None
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "system_chain", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "system_name", "params": []},
    ]
    ws.send(json.dumps(batch))
    assert [r["id"] for r in json.loads(ws.recv(timeout=5))] == [1, 2]


def test_undecodable_extrinsics_get_format_errors(ws: ClientConnection) -> None:
    assert rpc(ws, "author_submitExtrinsic", ["0x00"])["error"]["code"] == 1001
    assert rpc(ws, "author_submitExtrinsic", ["0x1004"])["error"]["code"] == 1001
    unsigned = rpc(ws, "author_submitExtrinsic", ["0x0c040000"])["error"]
    assert unsigned["code"] == 1011


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(max_size=300))
def test_fuzzed_extrinsics_never_break_the_server(ws: ClientConnection, payload: bytes) -> None:
    for candidate in (payload, bytes([len(payload) * 4 % 256]) + payload):
        answer = rpc(ws, "author_submitExtrinsic", ["0x" + candidate.hex()])
        assert "error" in answer
        assert answer["error"]["code"] in (1001, 1010, 1011, 1012, 1013, 1014, -32602)
    assert rpc(ws, "system_health")["result"]["peers"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    position=st.integers(min_value=1, max_value=140), flip=st.integers(min_value=1, max_value=255)
)
def test_tampered_signed_extrinsics_are_rejected(
    ws: ClientConnection, signed_transfer: bytes, position: int, flip: int
) -> None:
    tampered = bytearray(signed_transfer)
    position %= len(tampered)
    tampered[position] ^= flip
    answer = rpc(ws, "author_submitExtrinsic", ["0x" + tampered.hex()])
    assert "error" in answer, f"byte {position} ^ {flip} was accepted"


@pytest.fixture(scope="module")
def signed_transfer(devnet: DevnetChain) -> bytes:
    substrate = SubstrateInterface(url=devnet.url, ss58_format=30)
    try:
        call = substrate.compose_call(
            "Balances",
            "transfer_keep_alive",
            {"dest": dev_key("Bob").ss58_address, "value": 10**12},
        )
        return bytes(substrate.create_signed_extrinsic(call, dev_key("Eve"), nonce=5).data.data)
    finally:
        substrate.close()


def test_fault_knobs(devnet: DevnetChain, ws: ClientConnection) -> None:
    assert rpc(ws, "devnet_rejectNext", [1, "Transaction is outdated"])["result"] is True
    rejected = rpc(ws, "author_submitExtrinsic", ["0x00"])["error"]
    assert rejected == {
        "code": 1010,
        "message": "Invalid Transaction",
        "data": "Transaction is outdated",
    }
    rpc(ws, "devnet_setDelay", [150])
    started = time.monotonic()
    rpc(ws, "system_chain")
    assert time.monotonic() - started >= 0.15
    rpc(ws, "devnet_setDelay", [0])
    head = rpc(ws, "chain_getHeader")["result"]["number"]
    rpc(ws, "dev_newBlock", [{"count": 2}])
    assert int(rpc(ws, "chain_getHeader")["result"]["number"], 16) == int(head, 16) + 2
    with connect(devnet.url) as victim:
        assert rpc(victim, "devnet_dropConnections")["result"] >= 1
        with pytest.raises(ConnectionClosed):
            for _ in range(50):
                rpc(victim, "system_chain")
                time.sleep(0.05)


def test_storage_changes_reproduce_every_state_root(devnet: DevnetChain) -> None:
    with connect(devnet.url, max_size=2**26) as ws:
        rpc(ws, "dev_newBlock", [{"count": 3}])
        genesis_hash = rpc(ws, "chain_getBlockHash", [0])["result"]
        head_hash = rpc(ws, "chain_getHead")["result"]
        pairs = rpc(ws, "state_getPairs", ["0x", genesis_hash])["result"]
        state = {bytes.fromhex(k[2:]): bytes.fromhex(v[2:]) for k, v in pairs}
        genesis_header = rpc(ws, "chain_getHeader", [genesis_hash])["result"]
        assert "0x" + state_root_of(state.items()).hex() == genesis_header["stateRoot"]
        changes = rpc(ws, "pha_getStorageChanges", [genesis_hash, head_hash])["result"]
        assert len(changes) >= 4
        for entry in changes[1:]:
            for key, value in entry["mainStorageChanges"]:
                if value is None:
                    state.pop(bytes.fromhex(key[2:]), None)
                else:
                    state[bytes.fromhex(key[2:])] = bytes.fromhex(value[2:])
            header = rpc(ws, "chain_getHeader", [entry["blockHash"]])["result"]
            assert "0x" + state_root_of(state.items()).hex() == header["stateRoot"]


def test_read_proof_and_old_state(devnet: DevnetChain) -> None:
    substrate = SubstrateInterface(url=devnet.url, ss58_format=30)
    try:
        alice = dev_key("Alice").ss58_address
        before_hash = substrate.get_chain_head()
        before = substrate.query("System", "Account", [alice]).value["data"]["free"]
        call = substrate.compose_call(
            "Balances",
            "transfer_keep_alive",
            {"dest": dev_key("Bob").ss58_address, "value": 10**12},
        )
        substrate.submit_extrinsic(substrate.create_signed_extrinsic(call, dev_key("Alice")))
        devnet.new_block()
        old = substrate.query("System", "Account", [alice], block_hash=before_hash).value
        assert old["data"]["free"] == before
        assert substrate.query("System", "Account", [alice]).value["data"]["free"] < before
        key = "0x" + b":grandpa_authorities".hex()
        proof = substrate.rpc_request("state_getReadProof", [[key], before_hash])["result"]
        raw = bytes.fromhex(proof["proof"][0][2:])
        stored_key, offset = decode_bytes(raw, 0)
        assert stored_key == b":grandpa_authorities" and raw[offset] == 1
        value, _ = decode_bytes(raw, offset + 1)
        assert value[0] == 1 and decode_compact(value, 1)[0] == 1
    finally:
        substrate.close()
