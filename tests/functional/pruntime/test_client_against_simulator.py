"""The httpx pRuntime client against the simulator over real HTTP: methods and errors."""

from __future__ import annotations

import time

import httpx
import pytest

from poolkeeper.errors import (
    PRuntimeAlreadyInitialized,
    PRuntimeBusy,
    PRuntimeCallFailed,
    PRuntimeNotInitialized,
    PRuntimeSyncRejected,
    PRuntimeUnavailable,
)
from poolkeeper.pruntime import HttpPRuntimeClient, InitRuntimeRequest, PRuntimeTransport
from poolkeeper.pruntime.messages import CombinedHeadersToSync
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime._scale import Reader, decode_all, enc_str, enc_vec
from poolkeeper_devnet.pruntime.minichain import MiniChain, registered


def init_request(chain: MiniChain, **extra: object) -> InitRuntimeRequest:
    return InitRuntimeRequest(
        encoded_genesis_info=chain.genesis_info(),
        encoded_genesis_state=chain.genesis_state(),
        **extra,  # type: ignore[arg-type]
    )


async def initialized(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain, index: int = 0
) -> HttpPRuntimeClient:
    client = transport.client(sim.url(index))
    await client.init_runtime(init_request(chain))
    return client


async def test_get_info_before_init_reports_uninitialized(
    sim: SimulatorThread, transport: PRuntimeTransport
) -> None:
    info = await transport.client(sim.url(0)).get_info()
    assert not info.initialized
    assert info.public_key is None and info.system is None
    assert (info.headernum, info.blocknum) == (0, 0)
    assert info.score == 1000
    assert info.can_load_chain_state  # as a fresh phactory (no gatekeeper key sealed)


async def test_same_worker_behind_port_and_prefix(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    by_port = await initialized(sim, transport, chain, 1)
    by_prefix = transport.client(sim.prefix_url(1))
    assert (await by_prefix.get_info()).public_key == (await by_port.get_info()).public_key
    assert not (await transport.client(sim.prefix_url(2)).get_info()).initialized


async def test_init_runtime_sets_counters_and_identity(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(0))
    response = await client.init_runtime(init_request(chain))
    info = await client.get_info()
    assert info.initialized and info.dev_mode and not info.registered
    # solo mode: header 0 came with InitRuntime; the next header and block are 1
    assert (info.headernum, info.para_headernum, info.blocknum) == (1, 0, 1)
    assert info.genesis_block_hash == chain.hash(0).hex()
    assert info.public_key == response.encoded_public_key.hex()
    assert info.public_key == sim.simulator.identity(0).public.hex()
    assert info.system is not None and info.system.public_key == info.public_key
    assert info.can_load_chain_state
    assert response.attestation is None
    assert response.encoded_genesis_block_hash == chain.hash(0)


async def test_debug_set_key_chooses_identity_and_operator_is_embedded(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    import sr25519

    seed, operator = bytes(range(32)), b"\x11" * 32
    client = transport.client(sim.url(0))
    response = await client.init_runtime(
        init_request(chain, debug_set_key=seed, encoded_operator=operator)
    )
    assert response.encoded_public_key == bytes(sr25519.pair_from_seed(seed)[0])
    info = response.encoded_runtime_info
    # WorkerRegistrationInfoV2: operator is Some(operator), then para_id, consensus version
    assert info[-(1 + 32 + 8) :] == b"\x01" + operator + (2035).to_bytes(4, "little") + (
        1
    ).to_bytes(4, "little")
    replaced = await client.get_runtime_info(encoded_operator=b"\x22" * 32)
    assert b"\x01" + b"\x22" * 32 in replaced.encoded_runtime_info


async def test_init_twice_is_already_initialized(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    with pytest.raises(PRuntimeAlreadyInitialized) as caught:
        await client.init_runtime(init_request(chain))
    assert caught.value.status == 500
    assert caught.value.message == "Runtime already initialized"


async def test_init_with_wrong_genesis_state_root_is_refused(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    other = MiniChain(extra_genesis={b"extra": b"value"})
    client = transport.client(sim.url(0))
    with pytest.raises(PRuntimeCallFailed) as caught:
        await client.init_runtime(
            InitRuntimeRequest(
                encoded_genesis_info=chain.genesis_info(),
                encoded_genesis_state=other.genesis_state(),
            )
        )
    assert caught.value.message.startswith("StateRootMismatch block=0 expected=0x")
    assert not (await client.get_info()).initialized


async def test_init_with_undecodable_genesis_is_decode_error(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(0))
    with pytest.raises(PRuntimeCallFailed) as caught:
        await client.init_runtime(InitRuntimeRequest(encoded_genesis_info=b"\x01\x02"))
    assert (caught.value.status, caught.value.kind) == (400, "decode_error")
    assert caught.value.message.startswith("DecodeError(")


async def test_calls_before_init_are_not_initialized(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(0))
    calls = [
        client.get_runtime_info(),
        client.sync_header(chain.headers_to_sync(1, 0)),
        client.dispatch_blocks(b"\x00"),
        client.get_egress_messages(),
        client.get_endpoint_info(),
    ]
    for call in calls:
        with pytest.raises(PRuntimeNotInitialized) as caught:
            await call
        assert (caught.value.status, caught.value.kind) == (500, "not_initialized")


async def test_sync_dispatch_registration_and_attestation(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    info = await client.get_info()
    assert info.public_key is not None and info.ecdh_public_key is not None
    pubkey, ecdh = bytes.fromhex(info.public_key), bytes.fromhex(info.ecdh_public_key)
    chain.add_block()
    chain.add_block([registered(pubkey, ecdh)])
    chain.add_block()
    assert await client.sync_header(chain.headers_to_sync(1, 3)) == 3
    assert (await client.get_runtime_info()).attestation is None  # nothing dispatched yet
    assert await client.dispatch_blocks(chain.blocks(1, 1)) == 1
    attested = await client.get_runtime_info()
    assert attested.attestation is not None
    assert attested.attestation.encoded_report == b"\x00"
    assert attested.attestation.provider == "null"
    assert not (await client.get_info()).registered
    assert await client.dispatch_blocks(chain.blocks(1, 3)) == 3  # block 1 is ignored now
    info = await client.get_info()
    assert info.registered and info.system is not None and info.system.registered
    assert (info.headernum, info.blocknum) == (4, 4)
    assert not info.can_load_chain_state
    assert info.current_block_time == 1_700_000_000_000 + 3 * 12_000


async def test_workers_synced_to_the_same_block_share_one_storage(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    # Thousands of simulated pRuntimes must not each hold a copy of the chain's storage.
    clients = [await initialized(sim, transport, chain, index) for index in range(3)]
    for _ in range(3):
        chain.add_block()
    for client in clients[:2]:
        await client.sync_header(chain.headers_to_sync(1, 3))
        assert await client.dispatch_blocks(chain.blocks(1, 3)) == 3
    assert sim.worker(0).version is sim.worker(1).version
    assert sim.worker(0).version.root == chain.headers[3][33:65]
    await clients[2].sync_header(chain.headers_to_sync(1, 2))
    assert await clients[2].dispatch_blocks(chain.blocks(1, 2)) == 2
    assert sim.worker(2).version is not sim.worker(0).version  # one block behind


async def test_workers_sent_the_same_payload_share_one_encoding_and_large_bodies_arrive_whole(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    clients = [await initialized(sim, transport, chain, index) for index in range(3)]
    big = 200_000  # a block body far above the size joined with its head in one write
    chain.add_block(changes={bytes([7]) * 32: b"x" * big})
    chain.add_block()
    headers, blocks = chain.headers_to_sync(1, 2), chain.blocks(1, 2)
    before = transport.shared_bodies.encodings
    for client in clients:
        assert await client.sync_header(headers) == 2
        assert await client.dispatch_blocks(blocks) == 2
    assert transport.shared_bodies.encodings - before == 2  # one per payload, not per worker
    assert {(await c.get_info()).state_root for c in clients} == {chain.headers[2][33:65].hex()}


async def test_headers_already_synced_are_dropped_from_a_batch(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    for _ in range(4):
        chain.add_block()
    assert await client.sync_header(chain.headers_to_sync(1, 2)) == 2
    assert await client.sync_header(chain.headers_to_sync(1, 2)) == 2  # all old: no-op
    assert await client.sync_header(chain.headers_to_sync(2, 4)) == 4


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("gap", "BlockNumberMismatch"),
        ("no-justification", "MissingJustification"),
        ("unlinked", "HeaderHashMismatch"),
        ("bad-justification", "HeaderValidateFailed"),
        ("foreign-justification", "HeaderValidateFailed"),
    ],
)
async def test_sync_header_rejections(
    sim: SimulatorThread,
    transport: PRuntimeTransport,
    chain: MiniChain,
    case: str,
    reason: str,
) -> None:
    import nacl.signing

    client = await initialized(sim, transport, chain)
    for _ in range(3):
        chain.add_block()
    if case == "gap":
        batch = chain.headers_to_sync(2, 3)
    elif case == "no-justification":
        batch = chain.headers_to_sync(1, 3, justification=False)
    elif case == "unlinked":
        fork = MiniChain(start_ms=1)
        fork.add_block()
        fork.add_block()
        batch = enc_vec(
            [
                chain.headers[1] + b"\x00",
                fork.headers[2] + b"\x01" + _bytes(chain.justification(2)),
            ]
        )
    elif case == "bad-justification":
        batch = chain.headers_to_sync(1, 3, justification=chain.justification(2))
    else:
        stranger = nacl.signing.SigningKey(b"\x07" * 32)
        batch = chain.headers_to_sync(1, 3, justification=chain.justification(3, signer=stranger))
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_header(batch)
    assert caught.value.reason == reason
    assert caught.value.status == 500
    assert (await client.get_info()).headernum == 1


def _bytes(data: bytes) -> bytes:
    return enc_vec([bytes([b]) for b in data])


async def test_dispatch_rejections(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    for _ in range(3):
        chain.add_block()
    await client.sync_header(chain.headers_to_sync(1, 2))
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.dispatch_blocks(chain.blocks(2, 2))
    assert caught.value.message == "BlockNumberMismatch"
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.dispatch_blocks(chain.blocks(1, 3))  # header 3 not synced
    assert caught.value.message == "NoStateRoot"
    assert (await client.get_info()).blocknum == 3  # blocks 1 and 2 were applied
    await client.sync_header(chain.headers_to_sync(3, 3))
    tampered = chain.blocks(3, 3).replace(
        (1_700_000_000_000 + 3 * 12_000).to_bytes(8, "little"),
        (1_700_000_000_001 + 3 * 12_000).to_bytes(8, "little"),
    )
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.dispatch_blocks(tampered)
    assert caught.value.reason == "StateRootMismatch"
    assert caught.value.message.startswith(
        f"StateRootMismatch block=3 expected=0x{chain.headers[3][33:65].hex()} actual=0x"
    )
    assert (await client.get_info()).blocknum == 3


async def test_para_header_sync_is_chain_mode_mismatch_in_solo_mode(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    chain.add_block()
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_para_header(enc_vec([chain.headers[1]]), [b"proof"])
    assert caught.value.message == "ChainModeMismatch"
    combined = await client.sync_combined_headers(
        CombinedHeadersToSync(encoded_relaychain_headers=chain.headers_to_sync(1, 1))
    )
    assert (combined.relaychain_synced_to, combined.parachain_synced_to) == (1, 0)


async def test_load_chain_state_only_before_sync(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    await client.load_chain_state(5, chain.genesis_state())
    info = await client.get_info()
    assert (info.headernum, info.blocknum, info.can_load_chain_state) == (6, 6, False)
    with pytest.raises(PRuntimeCallFailed) as caught:
        await client.load_chain_state(7, chain.genesis_state())
    assert caught.value.status == 500


async def test_endpoints_are_signed_by_the_worker(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    import sr25519

    client = await initialized(sim, transport, chain)
    empty = await client.get_endpoint_info()
    assert empty.encoded_endpoint_payload is None and empty.signature is None
    signed = await client.sign_endpoint_info(enc_vec([enc_str("http://10.0.0.5:8000")]))
    assert signed.encoded_endpoint_payload is not None and signed.signature is not None
    public = sim.simulator.identity(0).public
    assert signed.encoded_endpoint_payload.startswith(public)
    assert sr25519.verify(signed.signature, signed.encoded_endpoint_payload, public)
    assert await client.get_endpoint_info() == signed


async def test_get_info_json_mode_matches_protobuf(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    assert await client.get_info_json() == await client.get_info()
    async with httpx.AsyncClient() as http:
        raw = await http.get(f"{sim.url(0)}/prpc/PhactoryAPI.GetInfo")
        assert raw.status_code == 200
        assert raw.headers["content-type"] == "application/octet-stream"
        data = raw.json()
        assert data["initialized"] is True and data["headernum"] == 1
        assert data["memory_usage"]["free"] > 0
        pretty = await http.get(f"{sim.url(0)}/info")
        assert pretty.json()["public_key"] == data["public_key"]
        runtime = await http.post(f"{sim.url(0)}/prpc/PhactoryAPI.GetRuntimeInfo?json", content=b"")
        assert runtime.status_code == 200
        assert "attestation" not in runtime.json()  # serde(skip): registration needs protobuf
        assert isinstance(runtime.json()["encoded_public_key"], list)
        missing = await http.post(
            f"{sim.url(0)}/prpc/PhactoryAPI.SyncHeader",
            json={"encoded_authority_set_change": None},
        )
        assert missing.status_code == 400
        assert "missing field `encoded_headers`" in missing.json()["error"]


async def test_json_errors_carry_the_pruntime_text(
    sim: SimulatorThread, transport: PRuntimeTransport
) -> None:
    async with httpx.AsyncClient() as http:
        unknown = await http.post(f"{sim.url(0)}/prpc/PhactoryAPI.Nope?json", content=b"")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": 'ProtoError { message: "Method Not Found" }'}
        uninit = await http.post(f"{sim.url(0)}/prpc/PhactoryAPI.GetEgressMessages?json")
        assert (uninit.status_code, uninit.json()) == (500, {"error": "Runtime not initialized"})


async def test_unknown_method_is_404(sim: SimulatorThread, transport: PRuntimeTransport) -> None:
    client = transport.client(sim.url(0))
    with pytest.raises(PRuntimeCallFailed) as caught:
        await client._call("Frobnicate", _empty(), _empty_type())
    assert (caught.value.status, caught.value.kind) == (404, "method_not_found")
    assert caught.value.message == "Method Not Found"


def _empty():  # type: ignore[no-untyped-def]
    from poolkeeper.pruntime.messages import Empty

    return Empty()


def _empty_type():  # type: ignore[no-untyped-def]
    from poolkeeper.pruntime.messages import Empty

    return Empty


async def test_public_port_serves_only_get_info(
    sim: SimulatorThread, transport: PRuntimeTransport
) -> None:
    for url in (sim.public_url(0), sim.simulator.prefix_url(0).replace("/w/", "/pub/")):
        public = transport.client(url)
        assert not (await public.get_info()).initialized
        with pytest.raises(PRuntimeCallFailed) as caught:
            await public.get_egress_messages()
        assert (caught.value.status, caught.value.kind, caught.value.message) == (
            403,
            "forbidden",
            "",
        )


async def test_body_over_limit_is_413(sim: SimulatorThread, transport: PRuntimeTransport) -> None:
    client = transport.client(sim.url(0))
    with pytest.raises(PRuntimeCallFailed) as caught:
        await client.get_runtime_info(encoded_operator=b"\x00" * 2048)
    assert (caught.value.status, caught.value.kind, caught.value.message) == (
        413,
        "too_large",
        "Entity too large",
    )


async def test_unreachable_worker_is_unavailable_on_both_urls(
    sim: SimulatorThread, transport: PRuntimeTransport
) -> None:
    sim.set_fault(0, "unreachable")
    for url in (sim.url(0), sim.prefix_url(0)):
        with pytest.raises(PRuntimeUnavailable) as caught:
            await transport.client(url).get_info()
        assert "unreachable" in caught.value.reason
    assert not (await transport.client(sim.url(1)).get_info()).initialized
    sim.set_fault(0, "clear")
    assert not (await transport.client(sim.url(0)).get_info()).initialized


async def test_nothing_listening_is_unavailable(transport: PRuntimeTransport) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PRuntimeUnavailable):
        await transport.client(f"http://127.0.0.1:{port}").get_info()


async def test_slow_worker_times_out(sim: SimulatorThread) -> None:
    sim.set_fault(2, "slow", seconds=1.0)
    async with PRuntimeTransport(timeout=0.2) as impatient:
        started = time.monotonic()
        with pytest.raises(PRuntimeUnavailable) as caught:
            await impatient.client(sim.prefix_url(2)).get_info()
        assert "timed out" in caught.value.reason
        assert time.monotonic() - started < 0.9
    async with PRuntimeTransport(timeout=3) as patient:
        assert not (await patient.client(sim.url(2)).get_info()).initialized


async def test_error500_and_rcu_faults(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    sim.set_fault(0, "rcu")
    assert (await client.get_info()).initialized  # GetInfo works during RCU
    with pytest.raises(PRuntimeBusy) as busy:
        await client.sync_header(chain.headers_to_sync(1, 0))
    assert "RCU in progress" in busy.value.reason
    sim.set_fault(0, "clear")
    sim.set_fault(0, "error500")
    with pytest.raises(PRuntimeCallFailed) as failed:
        await client.get_info()
    assert (failed.value.status, failed.value.kind) == (500, "app")


async def test_restart_loses_state_and_stall_never_advances(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = await initialized(sim, transport, chain)
    chain.add_block()
    chain.add_block()
    sim.set_fault(0, "stall")
    assert await client.sync_header(chain.headers_to_sync(1, 2)) == 0
    assert (await client.get_info()).headernum == 1
    sim.set_fault(0, "clear")
    assert await client.sync_header(chain.headers_to_sync(1, 2)) == 2
    sim.set_fault(0, "restart")
    assert not (await client.get_info()).initialized
    await client.init_runtime(init_request(chain))  # a restarted worker can be initialized again
    assert (await client.get_info()).headernum == 1


async def test_wrong_genesis_is_visible_and_refuses_the_real_chain(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(0))
    sim.set_fault(0, "wrong_genesis")
    info = await client.get_info()
    assert info.initialized and info.genesis_block_hash != chain.hash(0).hex()
    chain.add_block()
    with pytest.raises(PRuntimeSyncRejected) as caught:
        await client.sync_header(chain.headers_to_sync(1, 1))
    assert caught.value.message == "HeaderHashMismatch"


async def test_admin_endpoint_sets_faults_and_lists_workers(sim: SimulatorThread) -> None:
    async with httpx.AsyncClient() as http:
        base = sim.prefix_url(0).rsplit("/w/", 1)[0]
        listing = (await http.get(f"{base}/devnet/workers")).json()
        assert [w["index"] for w in listing] == [0, 1, 2]
        assert listing[1]["public_key"] == "0x" + sim.simulator.identity(1).public.hex()
        answer = await http.post(f"{base}/devnet/fault", json={"worker": 1, "fault": "error500"})
        assert answer.status_code == 200
        assert sim.simulator.faults[1].error500
        bad = await http.post(f"{base}/devnet/fault", json={"worker": 1, "fault": "explode"})
        assert bad.status_code == 400


async def test_requests_are_counted_per_worker_and_method(
    sim: SimulatorThread, transport: PRuntimeTransport
) -> None:
    before = sim.requests()
    for _ in range(3):
        await transport.client(sim.url(1)).get_info()
    await transport.client(sim.prefix_url(1)).get_info()
    with pytest.raises(PRuntimeNotInitialized):
        await transport.client(sim.url(2)).get_egress_messages()  # failed answers count too
    after = sim.requests()
    assert after[0] == before[0]
    assert after[1].get("GetInfo", 0) - before[1].get("GetInfo", 0) == 4
    assert after[2].get("GetEgressMessages", 0) - before[2].get("GetEgressMessages", 0) == 1
    async with httpx.AsyncClient() as http:
        base = sim.prefix_url(0).rsplit("/w/", 1)[0]
        listing = (await http.get(f"{base}/devnet/requests")).json()
    assert listing["1"]["GetInfo"] == after[1]["GetInfo"]


def test_identities_are_deterministic_per_seed() -> None:
    a = SimulatorThread(2, seed=b"x").simulator
    b = SimulatorThread(2, seed=b"x").simulator
    c = SimulatorThread(2, seed=b"y").simulator
    assert a.identity(1) == b.identity(1)
    assert a.identity(0).public != a.identity(1).public
    assert a.identity(0).public != c.identity(0).public


def test_reader_rejects_truncated_input() -> None:
    with pytest.raises(ValueError):
        decode_all(b"\x08\x01", lambda r: r.vec(Reader.bytes_))
