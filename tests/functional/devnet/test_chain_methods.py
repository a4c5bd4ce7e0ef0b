"""Every JSON-RPC method issue 3 lists, called on the devnet chain with a node's
parameters and checked for a node's result shape; and fuzzed JSON-RPC requests (any
method, any params) that must get an answer, never crash a handler or the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from substrateinterface import SubstrateInterface
from websockets.sync.client import ClientConnection, connect

from poolkeeper_devnet.chain.server import DevnetChain
from tests.functional.devnet.conftest import dev_key

PHA = 10**12
LISTED_METHODS = [
    "state_getMetadata",
    "state_getRuntimeVersion",
    "chain_getBlockHash",
    "chain_getHeader",
    "chain_getBlock",
    "chain_getFinalizedHead",
    "state_getStorage",
    "state_getStorageAt",
    "state_queryStorageAt",
    "state_getKeysPaged",
    "state_getReadProof",
    "state_getPairs",
    "system_accountNextIndex",
    "system_properties",
    "system_chain",
    "system_syncState",
    "rpc_methods",
    "author_submitExtrinsic",
    "author_submitAndWatchExtrinsic",
    "chain_subscribeNewHeads",
    "chain_subscribeFinalizedHeads",
    "payment_queryInfo",
    "state_call",
    "pha_getStorageChanges",
    "pha_getMqNextSequence",
    "grandpa_proveFinality",
]


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetChain]:
    handle = DevnetChain.start("dev", block_time="manual", finality_lag=1)
    try:
        handle.call(lambda: [handle.server.produce_block() for _ in range(3)])
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def ws(devnet: DevnetChain) -> Iterator[ClientConnection]:
    with connect(devnet.url, max_size=2**26) as connection:
        yield connection


_ids = iter(range(1, 10**9))
_notifications: list[dict[str, Any]] = []
"""Notifications received while waiting for an answer, kept for ``notifications``."""


def _receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=10))
    if "method" in message and "id" not in message:
        _notifications.append(message)
    return message


def call(ws: ClientConnection, method: str, *params: Any) -> Any:
    """The result of one request (notifications arriving meanwhile are kept)."""
    request_id = next(_ids)
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    while True:
        message = _receive(ws)
        if message.get("id") == request_id:
            assert "error" not in message, (method, params, message)
            return message["result"]


def notifications(ws: ClientConnection, subscription: str, count: int) -> list[Any]:
    def mine() -> list[dict[str, Any]]:
        return [m for m in _notifications if m["params"]["subscription"] == subscription]

    while len(mine()) < count:
        _receive(ws)
    taken = mine()[:count]
    for message in taken:
        _notifications.remove(message)
    return [m["params"]["result"] for m in taken]


def test_rpc_methods_lists_every_method_of_the_issue(ws: ClientConnection) -> None:
    methods = call(ws, "rpc_methods")["methods"]
    assert set(LISTED_METHODS) <= set(methods), set(LISTED_METHODS) - set(methods)


def test_request_counts_by_method(ws: ClientConnection) -> None:
    before = call(ws, "dev_requestCounts")
    call(ws, "chain_getFinalizedHead")
    call(ws, "chain_getFinalizedHead")
    after = call(ws, "dev_requestCounts")
    assert after["chain_getFinalizedHead"] - before.get("chain_getFinalizedHead", 0) == 2
    assert after["dev_requestCounts"] - before["dev_requestCounts"] == 1


def test_metadata_version_and_system(ws: ClientConnection, devnet: DevnetChain) -> None:
    metadata = bytes.fromhex(call(ws, "state_getMetadata")[2:])
    assert metadata[:4] == b"meta" and metadata[4] == 14
    head_hash = call(ws, "chain_getBlockHash")
    assert call(ws, "state_getMetadata", head_hash) == "0x" + metadata.hex()
    version = call(ws, "state_getRuntimeVersion")
    assert (version["specName"], version["specVersion"]) == ("khala", 1251)
    assert isinstance(version["transactionVersion"], int) and version["apis"]
    assert call(ws, "system_chain") == "Khala Devnet"
    assert call(ws, "system_properties")["ss58Format"] == 30
    sync = call(ws, "system_syncState")
    head = int(call(ws, "chain_getHeader")["number"], 16)
    assert sync["currentBlock"] == sync["highestBlock"] == head >= 3
    assert call(ws, "system_accountNextIndex", dev_key("Dave").ss58_address) == 0


def test_blocks_and_finality(ws: ClientConnection) -> None:
    genesis = call(ws, "chain_getBlockHash", 0)
    head_hash = call(ws, "chain_getBlockHash")
    header = call(ws, "chain_getHeader", head_hash)
    number = int(header["number"], 16)
    assert call(ws, "chain_getBlockHash", number) == head_hash
    assert call(ws, "chain_getBlockHash", [0, number]) == [genesis, head_hash]
    block = call(ws, "chain_getBlock", head_hash)["block"]
    assert block["header"] == header and isinstance(block["extrinsics"], list)
    parent = call(ws, "chain_getHeader", header["parentHash"])
    assert int(parent["number"], 16) == number - 1
    finalized = call(ws, "chain_getFinalizedHead")
    assert int(call(ws, "chain_getHeader", finalized)["number"], 16) == number - 1  # lag 1
    proof = call(ws, "grandpa_proveFinality", number - 1)
    assert proof.startswith("0x" + finalized[2:])
    assert call(ws, "grandpa_proveFinality", number) is None  # not final yet


def test_storage_reads(ws: ClientConnection, substrate: SubstrateInterface) -> None:
    now_key = substrate.create_storage_key("Timestamp", "Now").to_hex()
    head_hash = call(ws, "chain_getBlockHash")
    genesis = call(ws, "chain_getBlockHash", 0)
    now = call(ws, "state_getStorage", now_key)
    assert call(ws, "state_getStorageAt", now_key, head_hash) == now
    at_genesis = call(ws, "state_getStorage", now_key, genesis)
    assert int.from_bytes(bytes.fromhex(at_genesis[2:]), "little") < int.from_bytes(
        bytes.fromhex(now[2:]), "little"
    )
    (changes,) = call(ws, "state_queryStorageAt", [now_key, "0x00"], genesis)
    assert changes == {"block": genesis, "changes": [[now_key, at_genesis], ["0x00", None]]}
    prefix = substrate.create_storage_key("System", "Account").to_hex()[:66]
    first = call(ws, "state_getKeysPaged", prefix, 2)
    second = call(ws, "state_getKeysPaged", prefix, 2, first[-1])
    assert len(first) == 2 and second and not set(first) & set(second)
    assert sorted(first + second) == first + second
    pairs = dict(call(ws, "state_getPairs", prefix))
    assert set(first + second) <= set(pairs)
    proof = call(ws, "state_getReadProof", [now_key], head_hash)
    assert proof["at"] == head_hash
    assert any(now_key[2:] in node for node in proof["proof"])  # the key's own node
    changes = call(ws, "pha_getStorageChanges", genesis, head_hash)
    assert next(c["blockHash"] for c in changes) == genesis
    assert any(k == now_key for k, _ in changes[-1]["mainStorageChanges"])
    worker = "0x" + "11" * 32
    assert call(ws, "pha_getMqNextSequence", worker) == 0


def test_fees_nonces_and_runtime_calls(ws: ClientConnection, substrate: SubstrateInterface) -> None:
    alice = dev_key("Alice")
    call_ = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    extrinsic = substrate.create_signed_extrinsic(call_, alice, nonce=0)
    raw = bytes(extrinsic.data.data)
    quoted = call(ws, "payment_queryInfo", "0x" + raw.hex())
    fee = int(quoted["partialFee"])
    assert fee > 0 and quoted["class"] == "normal"
    info = bytes.fromhex(
        call(
            ws,
            "state_call",
            "TransactionPaymentApi_query_info",
            "0x" + raw.hex() + len(raw).to_bytes(4, "little").hex(),
        )[2:]
    )
    assert int.from_bytes(info[-16:], "little") == fee  # RuntimeDispatchInfo.partial_fee
    nonce = call(ws, "state_call", "AccountNonceApi_account_nonce", "0x" + alice.public_key.hex())
    assert nonce == "0x" + (0).to_bytes(4, "little").hex()


def test_submit_watch_and_head_subscriptions(
    ws: ClientConnection, devnet: DevnetChain, substrate: SubstrateInterface
) -> None:
    heads = call(ws, "chain_subscribeNewHeads")
    finalized = call(ws, "chain_subscribeFinalizedHeads")
    (first_head,) = notifications(ws, heads, 1)
    (first_final,) = notifications(ws, finalized, 1)
    assert int(first_head["number"], 16) == int(first_final["number"], 16) + 1
    charlie = dev_key("Charlie")
    transfer = substrate.compose_call(
        "Balances", "transfer_keep_alive", {"dest": dev_key("Bob").ss58_address, "value": PHA}
    )
    now = substrate.create_signed_extrinsic(transfer, charlie, nonce=1)
    watched = call(ws, "author_submitAndWatchExtrinsic", str(now.data))
    assert notifications(ws, watched, 1) == ["future"]  # nonce 1 before nonce 0
    before = substrate.create_signed_extrinsic(transfer, charlie, nonce=0)
    assert (
        call(ws, "author_submitExtrinsic", str(before.data)) == "0x" + before.extrinsic_hash.hex()
    )
    devnet.new_block()
    devnet.new_block()
    in_block, final = notifications(ws, watched, 2)
    assert set(in_block) == {"inBlock"} and set(final) == {"finalized"}
    assert in_block["inBlock"] == final["finalized"]
    new_heads = notifications(ws, heads, 2)
    assert new_heads[0]["number"] == hex(int(first_head["number"], 16) + 1)
    assert notifications(ws, finalized, 1)
    assert call(ws, "chain_unsubscribeNewHeads", heads) is True
    assert call(ws, "chain_unsubscribeFinalizedHeads", finalized) is True


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
HEXISH = st.binary(max_size=80).map(lambda b: "0x" + b.hex())


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    method_index=st.integers(min_value=0),
    params=st.one_of(
        st.lists(st.one_of(JSON_VALUES, HEXISH), max_size=4),
        st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
        JSON_VALUES,
    ),
    request_id=st.one_of(st.integers(), st.text(max_size=10)),
)
def test_fuzzed_requests_get_node_like_answers(
    ws: ClientConnection, method_index: int, params: Any, request_id: Any
) -> None:
    methods = [
        m for m in call(ws, "rpc_methods")["methods"] if not m.startswith(("dev", "author_unwatch"))
    ]
    method = methods[method_index % len(methods)]
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    while True:
        answer = _receive(ws)
        if answer.get("id") == request_id and "method" not in answer:
            break
    if "error" in answer:
        error = answer["error"]
        assert error["code"] != -32603, (method, params, error)  # no handler crashed
        assert isinstance(error["message"], str)
    assert call(ws, "system_health")["peers"] == 0
