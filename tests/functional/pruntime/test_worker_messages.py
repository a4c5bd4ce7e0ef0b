"""Worker behaviour driven by dispatched chain messages: registration, bench, heartbeats."""

from __future__ import annotations

import sr25519

from poolkeeper.pruntime import HttpPRuntimeClient, InitRuntimeRequest, PRuntimeTransport
from poolkeeper_devnet.pruntime import SimulatorThread
from poolkeeper_devnet.pruntime._scale import Reader, decode_all, u64
from poolkeeper_devnet.pruntime.minichain import (
    MiniChain,
    bench_start,
    heartbeat_challenge,
    ingress_key,
    registered,
    started,
    stopped,
)


def decode_egress(
    encoded: bytes,
) -> list[tuple[bytes, list[tuple[bytes, bytes, bytes, int, bytes]]]]:
    """SCALE Vec<(MessageOrigin, Vec<SignedMessage>)> -> [(origin, [(sender, topic, payload,
    sequence, signature)])], worker origins only."""

    def signed(r: Reader) -> tuple[bytes, bytes, bytes, int, bytes]:
        assert r.u8() == 2
        sender = r.take(32)
        return sender, r.bytes_(), r.bytes_(), r.u64(), r.bytes_()

    def entry(r: Reader) -> tuple[bytes, list[tuple[bytes, bytes, bytes, int, bytes]]]:
        assert r.u8() == 2
        return r.take(32), r.vec(signed)

    return decode_all(encoded, lambda r: r.vec(entry))


async def sync_all(client: HttpPRuntimeClient, chain: MiniChain, first: int) -> None:
    await client.sync_header(chain.headers_to_sync(first, chain.height))
    await client.dispatch_blocks(chain.blocks(first, chain.height))


async def test_bench_report_then_heartbeats_signed_with_increasing_sequences(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(1))
    await client.init_runtime(
        InitRuntimeRequest(
            encoded_genesis_info=chain.genesis_info(),
            encoded_genesis_state=chain.genesis_state(),
        )
    )
    identity = sim.simulator.identity(1)
    me = identity.public
    chain.add_block([registered(me, identity.ecdh_public)])
    chain.add_block([bench_start(me, 3)])
    chain.add_block()
    chain.add_block()
    await sync_all(client, chain, 1)
    assert decode_egress(await client.get_egress_messages()) == []  # block 4 < 2 + 3
    chain.add_block([started(me)])  # block 5: the bench report is due
    chain.add_block([heartbeat_challenge(b"\x01" * 32)])
    chain.add_block([heartbeat_challenge(b"\x02" * 32, online_target=b"\x00" * 32)])
    chain.add_block([heartbeat_challenge(b"\x03" * 32)])
    chain.add_block([stopped(me)])
    chain.add_block([heartbeat_challenge(b"\x04" * 32)])  # not computing any more
    await sync_all(client, chain, 5)

    [(origin, messages)] = decode_egress(await client.get_egress_messages())
    assert origin == me
    assert [m[1] for m in messages] == [
        b"phala/registry/event",
        b"phala/mining/report",
        b"phala/mining/report",
    ]
    assert [m[3] for m in messages] == [0, 1, 2]
    for sender, topic, payload, sequence, signature in messages:
        assert sender == me
        signed = b"\x02" + me + bytes([len(topic) << 2]) + topic
        signed += bytes([len(payload) << 2]) + payload + u64(sequence)
        assert sr25519.verify(signature, signed, me)
    bench = messages[0][2]
    assert bench[0] == 0  # RegistryEvent::BenchReport
    assert int.from_bytes(bench[9:17], "little") == 1000 * 3  # iterations = score x duration
    heartbeat = messages[1][2]
    assert heartbeat[0] == 1  # MiningReportEvent::HeartbeatV2
    assert int.from_bytes(heartbeat[1:5], "little") == 6  # challenge block
    assert (await client.get_info()).pending_messages == 3

    # The chain accepted sequences 0 and 1: the worker drops them.
    chain.add_block(changes={ingress_key(me): u64(2)})
    await sync_all(client, chain, chain.height)
    [(_, remaining)] = decode_egress(await client.get_egress_messages())
    assert [m[3] for m in remaining] == [2]


async def test_events_for_another_worker_are_ignored(
    sim: SimulatorThread, transport: PRuntimeTransport, chain: MiniChain
) -> None:
    client = transport.client(sim.url(0))
    await client.init_runtime(
        InitRuntimeRequest(
            encoded_genesis_info=chain.genesis_info(),
            encoded_genesis_state=chain.genesis_state(),
        )
    )
    other = sim.simulator.identity(2)
    chain.add_block([registered(other.public, other.ecdh_public), bench_start(other.public, 1)])
    chain.add_block()
    await sync_all(client, chain, 1)
    info = await client.get_info()
    assert not info.registered and info.pending_messages == 0
