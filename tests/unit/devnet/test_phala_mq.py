"""PhalaMq.sync_offchain_message: signature, sequence, sender/destination checks and routing."""

from __future__ import annotations

from poolkeeper_devnet.chain.pallets.phala_mq import PhalaMq
from tests.unit.devnet._phala_chain import Chain, account, make_worker

BENCH_REPORT_1000 = b"\x00" + (0).to_bytes(8, "little") + (5000).to_bytes(8, "little")


def test_valid_message_advances_ingress_and_reaches_the_registry() -> None:
    chain = Chain({"phala": {"benchmark_duration": 5}})
    worker = make_worker("mq")
    chain.register(worker, account("owner"))
    chain.drain()
    chain.send(worker, "phala/registry/event", BENCH_REPORT_1000)
    mq: PhalaMq = chain.pallet("PhalaMq")
    assert mq.next_sequence(worker.pubkey) == 1
    assert ("PhalaMq", "OffchainIngress", ({"Worker": worker.pubkey},), 1) in chain.drain()
    assert chain.pallet("PhalaRegistry").workers[worker.pubkey]["initial_score"] == 1000


def test_bad_sequence_is_rejected_and_changes_nothing() -> None:
    chain = Chain()
    worker = make_worker("mq")
    chain.register(worker, account("owner"))
    ahead = worker.signed_message("phala/registry/event", BENCH_REPORT_1000, sequence=1)
    error = chain.error_of("PhalaMq", "sync_offchain_message", account("r"), signed_message=ahead)
    assert error == "PhalaMq.BadSequence"
    chain.send(worker, "phala/registry/event", BENCH_REPORT_1000)
    replay = worker.signed_message("phala/registry/event", BENCH_REPORT_1000, sequence=0)
    error = chain.error_of("PhalaMq", "sync_offchain_message", account("r"), signed_message=replay)
    assert error == "PhalaMq.BadSequence"
    assert chain.pallet("PhalaMq").next_sequence(worker.pubkey) == 1


def test_bad_signature_is_rejected_and_does_not_consume_the_sequence() -> None:
    chain = Chain()
    worker, impostor = make_worker("mq"), make_worker("impostor")
    chain.register(worker, account("owner"))
    chain.drain()
    forged = impostor.signed_message("phala/registry/event", BENCH_REPORT_1000)
    forged["message"]["sender"] = {"Worker": worker.pubkey}
    error = chain.error_of("PhalaMq", "sync_offchain_message", account("r"), signed_message=forged)
    assert error == "PhalaRegistry.InvalidSignature"
    tampered = worker.signed_message("phala/registry/event", BENCH_REPORT_1000)
    tampered["message"]["payload"] = "0x00" + "00" * 16
    error = chain.error_of(
        "PhalaMq", "sync_offchain_message", account("r"), signed_message=tampered
    )
    assert error == "PhalaRegistry.InvalidSignature"
    short = {
        **worker.signed_message("phala/registry/event", BENCH_REPORT_1000),
        "signature": "0x00",
    }
    error = chain.error_of("PhalaMq", "sync_offchain_message", account("r"), signed_message=short)
    assert error == "PhalaRegistry.InvalidSignatureLength"
    assert chain.pallet("PhalaMq").next_sequence(worker.pubkey) == 0
    assert chain.pallet("PhalaRegistry").workers[worker.pubkey]["initial_score"] is None
    assert chain.drain() == []


def test_sender_destination_and_origin_checks() -> None:
    chain = Chain()
    worker = make_worker("mq")
    message = worker.signed_message("phala/registry/event", BENCH_REPORT_1000)
    pallet_sender = {**message, "message": {**message["message"], "sender": {"Pallet": "0x01"}}}
    error = chain.error_of(
        "PhalaMq", "sync_offchain_message", account("r"), signed_message=pallet_sender
    )
    assert error == "PhalaMq.BadSender"
    no_topic = {**message, "message": {**message["message"], "destination": ""}}
    error = chain.error_of(
        "PhalaMq", "sync_offchain_message", account("r"), signed_message=no_topic
    )
    assert error == "PhalaMq.BadDestination"
    error = chain.error_of("PhalaMq", "sync_offchain_message", None, signed_message=message)
    assert error == "System.BadOrigin"


def test_failing_handler_still_consumes_the_sequence_like_khala() -> None:
    chain = Chain()
    stranger = make_worker("unregistered")
    chain.send(stranger, "phala/registry/event", BENCH_REPORT_1000)
    assert chain.pallet("PhalaMq").next_sequence(stranger.pubkey) == 1
    assert chain.event_names() == []


def test_unknown_topic_is_accepted_and_ignored() -> None:
    chain = Chain()
    worker = make_worker("mq")
    chain.send(worker, "phala/unknown/topic", b"\x07")
    assert chain.pallet("PhalaMq").next_sequence(worker.pubkey) == 1


def test_payload_given_as_text_and_caret_topic_are_understood() -> None:
    """scalecodec hands Vec<u8> over as text when it is valid UTF-8; Khala topics start with ^."""
    chain = Chain({"phala": {"benchmark_duration": 1}})
    worker = make_worker("mq")
    chain.register(worker, account("owner"))
    payload = b"\x00" + b"\x01" * 8 + b"\x41" * 8  # valid UTF-8
    message = worker.signed_message("^phala/registry/event", payload)
    message["message"]["payload"] = payload.decode()
    chain.call("PhalaMq", "sync_offchain_message", account("r"), signed_message=message)
    expected = int.from_bytes(b"\x41" * 8, "little") // 1
    assert chain.pallet("PhalaRegistry").workers[worker.pubkey]["initial_score"] == min(
        expected, 2**32 - 1
    )


def test_outbound_messages_live_for_one_block() -> None:
    chain = Chain()
    worker = make_worker("mq")
    chain.register(worker, account("owner"))
    outbound = [c for c in chain.drain() if c[1] == "OutboundMessages"]
    assert len(outbound) == 1
    messages = outbound[0][3]
    assert [bytes.fromhex(m["destination"][2:]) for m in messages] == [b"phala/system/worker"] * 2
    assert messages[0]["sender"] == {"Pallet": "0x" + b"phala/registry".hex()}
    chain.next_block()
    assert [c for c in chain.drain() if c[1] == "OutboundMessages"] == [
        ("PhalaMq", "OutboundMessages", (), None)
    ]
    chain.next_block()
    assert chain.drain() == []
