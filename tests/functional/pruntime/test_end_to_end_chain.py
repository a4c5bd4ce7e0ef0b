"""A simulated pRuntime fed by the devnet chain over its RPC, registered with substrate-interface.

Issue 4's acceptance: init from the chain's genesis, sync headers (with GRANDPA
justifications) and blocks (with ``pha_getStorageChanges``), get the attestation,
``register_worker_v2``, see ``registered`` turn true, see the BenchReport in egress and,
once submitted with ``PhalaMq.sync_offchain_message``, the initial score on chain. The test
plays a minimal relay itself; the product's relay has its own tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface

from poolkeeper.pruntime import HttpPRuntimeClient, InitRuntimeRequest, PRuntimeTransport
from poolkeeper_devnet.chain.server import DevnetChain
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime._scale import (
    Reader,
    compact,
    decode_all,
    enc_bytes,
    enc_option,
    enc_vec,
    storage_prefix,
)

BENCH_DURATION = 2
SCORE = 1234


def unhex(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


@pytest.fixture(scope="module")
def chain() -> Iterator[DevnetChain]:
    genesis = {
        "parachain_id": 2035,
        "balances": {"//Alice": "1000000 PHA", "//Relayer": "1000000 PHA"},
        "phala": {"benchmark_duration": BENCH_DURATION, "none_attestation_enabled": True},
    }
    handle = DevnetChain.start(genesis, block_time="instant", finality_lag=1)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def substrate(chain: DevnetChain) -> Iterator[SubstrateInterface]:
    client = SubstrateInterface(url=chain.url, ss58_format=30)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def pruntime() -> Iterator[SimulatorThread]:
    with SimulatorThread(1, score=SCORE, base_port=0) as simulator:
        yield simulator


class MiniRelay:
    """Just enough of pherry's loop (PROTOCOL.md §2.3) to drive one worker."""

    def __init__(self, substrate: SubstrateInterface, client: HttpPRuntimeClient) -> None:
        self.substrate = substrate
        self.client = client

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.substrate.rpc_request(method, params)["result"]

    def block_hash(self, number: int) -> str:
        return str(self.rpc("chain_getBlockHash", [number]))

    def header(self, number: int) -> bytes:
        data = self.rpc("chain_getHeader", [self.block_hash(number)])
        logs = [unhex(item) for item in data["digest"]["logs"]]
        return (
            unhex(data["parentHash"])
            + compact(int(data["number"], 16))
            + unhex(data["stateRoot"])
            + unhex(data["extrinsicsRoot"])
            + compact(len(logs))
            + b"".join(logs)
        )

    def new_blocks(self, count: int) -> None:
        for _ in range(count):
            self.rpc("devnet_newBlock", [])

    def init_request(self, operator: bytes) -> InitRuntimeRequest:
        genesis_hash = self.block_hash(0)
        authorities_key = "0x" + b":grandpa_authorities".hex()
        set_id_key = "0x" + storage_prefix("Grandpa", "CurrentSetId").hex()
        raw = unhex(self.rpc("state_getStorage", [authorities_key, genesis_hash]))
        _, authorities = decode_all(raw, lambda r: (r.u8(), r.vec(lambda x: x.take(40))))
        set_id = unhex(self.rpc("state_getStorage", [set_id_key, genesis_hash]))
        proof = self.rpc("state_getReadProof", [[authorities_key, set_id_key], genesis_hash])
        genesis_info = (
            self.header(0)
            + enc_vec(authorities)
            + set_id
            + enc_vec(enc_bytes(unhex(item)) for item in proof["proof"])
        )
        pairs = self.rpc("state_getPairs", ["0x", genesis_hash])
        state = enc_vec(enc_bytes(unhex(k)) + enc_bytes(unhex(v)) for k, v in pairs)
        return InitRuntimeRequest(
            encoded_genesis_info=genesis_info,
            encoded_genesis_state=state,
            encoded_operator=operator,
        )

    async def sync(self) -> None:
        """Headers up to the finalized head, then every block they cover."""
        info = await self.client.get_info()
        finalized_hash = self.rpc("chain_getFinalizedHead", [])
        finalized = int(self.rpc("chain_getHeader", [finalized_hash])["number"], 16)
        if info.headernum <= finalized:
            last = self.block_hash(finalized)
            justification = unhex(self.rpc("chain_getBlock", [last])["justifications"][0][1])
            batch = [self.header(n) + b"\x00" for n in range(info.headernum, finalized)]
            batch.append(self.header(finalized) + enc_option(enc_bytes(justification)))
            assert await self.client.sync_header(enc_vec(batch)) == finalized
            info = await self.client.get_info()
        if info.blocknum < info.headernum:
            first, last_number = info.blocknum, info.headernum - 1
            changes = self.rpc(
                "pha_getStorageChanges", [self.block_hash(first), self.block_hash(last_number)]
            )
            blocks = []
            for number, entry in zip(range(first, last_number + 1), changes, strict=True):
                main = enc_vec(
                    enc_bytes(unhex(k)) + enc_option(None if v is None else enc_bytes(unhex(v)))
                    for k, v in entry["mainStorageChanges"]
                )
                blocks.append(self.header(number) + main + compact(0))
            assert await self.client.dispatch_blocks(enc_vec(blocks)) == last_number


def runtime_info_value(encoded: bytes, operator_ss58: str) -> dict[str, Any]:
    reader = Reader(encoded)
    value: dict[str, Any] = {
        "version": reader.u32(),
        "machine_id": "0x" + reader.bytes_().hex(),
        "pubkey": "0x" + reader.take(32).hex(),
        "ecdh_pubkey": "0x" + reader.take(32).hex(),
        "genesis_block_hash": "0x" + reader.take(32).hex(),
        "features": reader.vec(Reader.u32),
    }
    operator = reader.option(lambda r: r.take(32))
    assert operator is not None
    value["operator"] = operator_ss58
    value["para_id"] = reader.u32()
    value["max_consensus_version"] = reader.u32()
    reader.end()
    return value


def egress_messages(encoded: bytes) -> list[dict[str, Any]]:
    def signed(r: Reader) -> dict[str, Any]:
        assert r.u8() == 2
        sender = r.take(32)
        topic, payload, sequence, signature = r.bytes_(), r.bytes_(), r.u64(), r.bytes_()
        return {
            "message": {
                "sender": {"Worker": "0x" + sender.hex()},
                "destination": "0x" + topic.hex(),
                "payload": "0x" + payload.hex(),
            },
            "sequence": sequence,
            "signature": "0x" + signature.hex(),
        }

    def entry(r: Reader) -> list[dict[str, Any]]:
        assert r.u8() == 2
        r.take(32)
        return r.vec(signed)

    return [m for group in decode_all(encoded, lambda r: r.vec(entry)) for m in group]


def submit(substrate: SubstrateInterface, module: str, call: str, params: dict[str, Any]) -> Any:
    relayer = Keypair.create_from_uri("//Relayer", ss58_format=30)
    extrinsic = substrate.create_signed_extrinsic(
        substrate.compose_call(module, call, params), relayer
    )
    receipt = substrate.submit_extrinsic(extrinsic, wait_for_inclusion=True)
    assert receipt.is_success, receipt.error_message
    return receipt


async def test_register_and_benchmark_a_simulated_pruntime_on_the_devnet_chain(
    chain: DevnetChain, substrate: SubstrateInterface, pruntime: SimulatorThread
) -> None:
    alice = Keypair.create_from_uri("//Alice", ss58_format=30)
    async with PRuntimeTransport(max_in_flight=4, timeout=10) as transport:
        client = transport.client(pruntime.url(0))
        relay = MiniRelay(substrate, client)
        relay.new_blocks(2)
        init = await client.init_runtime(relay.init_request(alice.public_key))
        assert init.encoded_genesis_block_hash == unhex(relay.block_hash(0))
        pubkey = "0x" + init.encoded_public_key.hex()

        assert (await client.get_runtime_info()).attestation is None
        await relay.sync()
        runtime = await client.get_runtime_info()
        assert runtime.attestation is not None and runtime.attestation.encoded_report == b"\x00"

        info_value = runtime_info_value(runtime.encoded_runtime_info, alice.ss58_address)
        assert info_value["pubkey"] == pubkey
        submit(
            substrate,
            "PhalaRegistry",
            "register_worker_v2",
            {"pruntime_info": info_value, "attestation": None},
        )
        assert not (await client.get_info()).registered

        for _ in range(BENCH_DURATION + 3):
            relay.new_blocks(1)
            await relay.sync()
        info = await client.get_info()
        assert info.registered
        messages = egress_messages(await client.get_egress_messages())
        reports = [
            m
            for m in messages
            if m["message"]["destination"] == "0x" + b"phala/registry/event".hex()
        ]
        assert len(reports) == 1 and reports[0]["sequence"] == 0

        submit(substrate, "PhalaMq", "sync_offchain_message", {"signed_message": reports[0]})
        worker = substrate.query("PhalaRegistry", "Workers", [pubkey]).value
        assert worker["initial_score"] == SCORE

        # Once the chain's OffchainIngress moves past it, the worker drops the message.
        relay.new_blocks(2)
        await relay.sync()
        assert (await client.get_info()).pending_messages == 0
