"""JSON-RPC over HTTP POST on the devnet chain's websocket port, as a node serves it:
raw requests with httpx (single, batch, errors, subscriptions refused) and
substrate-interface, unmodified, in its HTTP mode (storage queries, a signed extrinsic)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websockets.sync.client import connect

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

PHA = 10**12


@pytest.fixture(scope="module")
def http_url(devnet: DevnetChain) -> str:
    return f"http://127.0.0.1:{devnet.port}"


def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=10, **kwargs)


def test_single_request_answers_like_over_the_websocket(devnet: DevnetChain, http_url: str) -> None:
    response = post(http_url, {"jsonrpc": "2.0", "id": 7, "method": "system_chain", "params": []})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"jsonrpc": "2.0", "result": "Khala Devnet", "id": 7}
    with connect(devnet.url) as ws:  # the same port still speaks websocket
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system_chain", "params": []}))
        assert json.loads(ws.recv(timeout=10))["result"] == "Khala Devnet"


def test_batch_answers_each_request_with_its_id(http_url: str) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "chain_getBlockHash", "params": [0]},
        {"jsonrpc": "2.0", "id": 2, "method": "no_suchMethod", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "system_properties", "params": []},
    ]
    answers = {a["id"]: a for a in post(http_url, batch).json()}
    assert answers[1]["result"].startswith("0x") and len(answers[1]["result"]) == 66
    assert answers[2]["error"] == {"code": -32601, "message": "Method not found"}
    assert answers[3]["result"]["ss58Format"] == 30


def test_node_like_errors(http_url: str) -> None:
    parse = httpx.post(
        http_url, content=b"{not json", headers={"content-type": "application/json"}, timeout=10
    )
    assert parse.status_code == 200
    assert parse.json()["error"]["code"] == -32700
    assert post(http_url, []).json()["error"]["code"] == -32600
    params = post(
        http_url, {"jsonrpc": "2.0", "id": 1, "method": "state_getStorage", "params": ["0xzz"]}
    ).json()
    assert params["error"]["code"] == -32602
    bad_xt = post(
        http_url,
        {"jsonrpc": "2.0", "id": 2, "method": "author_submitExtrinsic", "params": ["0x0102"]},
    ).json()
    assert bad_xt["error"]["code"] == 1001
    # a node's HTTP server refuses other methods and content types
    assert httpx.get(http_url, timeout=10).status_code in (400, 405, 426)
    assert httpx.put(http_url, json={}, timeout=10).status_code == 405
    text = httpx.post(http_url, content=b"{}", headers={"content-type": "text/plain"}, timeout=10)
    assert text.status_code == 415


def test_subscriptions_are_refused_over_http_as_jsonrpsee_does(http_url: str) -> None:
    for method, params in (
        ("chain_subscribeNewHeads", []),
        ("chain_subscribeFinalizedHeads", []),
        ("author_submitAndWatchExtrinsic", ["0x00"]),
        ("chain_unsubscribeNewHeads", ["0x01"]),
    ):
        answer = post(http_url, {"jsonrpc": "2.0", "id": 4, "method": method, "params": params})
        assert answer.json()["error"] == {"code": -32603, "message": "Internal error"}, method


def test_keep_alive_connection_serves_many_requests(http_url: str) -> None:
    with httpx.Client(timeout=10) as client:
        numbers = []
        for i in range(20):
            body = {"jsonrpc": "2.0", "id": i, "method": "chain_getHeader", "params": []}
            numbers.append(int(client.post(http_url, json=body).json()["result"]["number"], 16))
        assert numbers == sorted(numbers)


def test_substrate_interface_http_mode_queries_and_submits(
    devnet: DevnetChain, http_url: str
) -> None:
    substrate = SubstrateInterface(url=http_url, ss58_format=30)
    try:
        alice, bob = dev_key("Alice"), dev_key("Bob")
        before = int(substrate.query("System", "Account", [bob.ss58_address]).value["data"]["free"])
        accounts = {
            k.value: v.value for k, v in substrate.query_map("System", "Account", page_size=3)
        }
        assert alice.ss58_address in accounts
        assert len(accounts) >= 6
        call = substrate.compose_call(
            "Balances", "transfer_keep_alive", {"dest": bob.ss58_address, "value": 3 * PHA}
        )
        extrinsic = substrate.create_signed_extrinsic(call, alice)
        receipt = substrate.submit_extrinsic(extrinsic)  # HTTP: no waiting for inclusion
        assert receipt.extrinsic_hash == "0x" + extrinsic.extrinsic_hash.hex()
        deadline = time.monotonic() + 10
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.05)
            account = substrate.query("System", "Account", [bob.ss58_address]).value
            after = int(account["data"]["free"])
        assert after == before + 3 * PHA
        with pytest.raises(SubstrateRequestException, match="1012"):
            substrate.submit_extrinsic(extrinsic)  # the same extrinsic again, as on a node
    finally:
        substrate.close()
