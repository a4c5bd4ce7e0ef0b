"""PhalaRegistry: register_worker_v2 checks and effects, BenchReport, endpoints."""

from __future__ import annotations

import sr25519

from poolkeeper_devnet.chain.pallets import _scale
from poolkeeper_devnet.chain.pallets.phala_registry import devnet_ias_report
from tests.unit.devnet._phala_chain import PARA_ID, Chain, account, make_worker


def system_payloads(chain: Chain) -> list[bytes]:
    return [p for _s, topic, p in chain.ctx.worker_messages if topic == b"phala/system/worker"]


def test_first_registration_adds_the_worker_and_starts_its_benchmark() -> None:
    chain = Chain({"phala": {"benchmark_duration": 7}})
    worker, operator = make_worker("r"), account("operator")
    chain.ctx.number = 12
    chain.register(worker, operator)
    info = chain.pallet("PhalaRegistry").workers[worker.pubkey]
    assert info["operator"] == operator
    assert info["initial_score"] is None
    assert info["confidence_level"] == 128
    assert info["attestation_provider"] is None
    assert info["features"] == [1, 4]
    assert info["last_updated"] == chain.ctx.timestamp_ms // 1000
    assert chain.events() == [
        (
            "PhalaRegistry",
            "WorkerAdded",
            {"pubkey": worker.pubkey, "attestation_provider": None, "confidence_level": 128},
        )
    ]
    raw = bytes.fromhex(worker.pubkey[2:])
    assert system_payloads(chain) == [
        b"\x00" + raw + b"\x00" + raw + raw,  # Registered(WorkerIdentity{pubkey, ecdh_pubkey})
        b"\x00" + raw + b"\x01" + (7).to_bytes(4, "little"),  # BenchStart{duration: 7}
    ]
    changes = {(c[1], c[2]): c[3] for c in chain.drain() if c[0] == "PhalaRegistry"}
    assert changes[("WorkerAddedAt", (worker.pubkey,))] == 12
    assert changes[("Workers", (worker.pubkey,))] == info


def test_reregistration_updates_operator_and_keeps_score_and_added_at() -> None:
    chain = Chain()
    worker = make_worker("r")
    chain.register(worker, account("a"))
    chain.bench(worker, 1500)
    chain.drain()
    chain.next_block()
    chain.register(worker, account("b"))
    info = chain.pallet("PhalaRegistry").workers[worker.pubkey]
    assert info["operator"] == account("b")
    assert info["initial_score"] == 1500
    assert [e[1] for e in chain.events()] == ["WorkerUpdated"]
    assert [c[1] for c in chain.drain() if c[0] == "PhalaRegistry"] == ["Workers"]


def test_none_attestation_needs_the_devnet_switch() -> None:
    chain = Chain({"phala": {"none_attestation_enabled": False}})
    worker = make_worker("r")
    info = chain.registration_info(worker, account("op"))
    error = chain.error_of(
        "PhalaRegistry", "register_worker_v2", account("op"), pruntime_info=info, attestation=None
    )
    assert error == "PhalaRegistry.NoneAttestationDisabled"


def test_devnet_ias_test_report_is_accepted_and_others_rejected() -> None:
    chain = Chain({"phala": {"none_attestation_enabled": False}})
    worker = make_worker("r")
    info = chain.registration_info(worker, account("op"))

    def ias(report: bytes) -> dict[str, object]:
        return {
            "SgxIas": {
                "ra_report": "0x" + report.hex(),
                "signature": "0x",
                "raw_signing_cert": "0x",
            }
        }

    call = ("PhalaRegistry", "register_worker_v2", account("op"))
    assert chain.error_of(*call, pruntime_info=info, attestation=ias(b"{}")) == (
        "PhalaRegistry.InvalidIASSigningCert"
    )
    other = chain.registration_info(worker, account("someone-else"))
    assert chain.error_of(*call, pruntime_info=info, attestation=ias(devnet_ias_report(other))) == (
        "PhalaRegistry.InvalidRuntimeInfoHash"
    )
    bad_dcap = {"SgxDcap": {"quote": "0x00", "collateral": None}}
    assert chain.error_of(*call, pruntime_info=info, attestation=bad_dcap) == (
        "PhalaRegistry.InvalidIASSigningCert"
    )
    chain.call(*call, pruntime_info=info, attestation=ias(devnet_ias_report(info)))
    stored = chain.pallet("PhalaRegistry").workers[worker.pubkey]
    assert (stored["attestation_provider"], stored["confidence_level"]) == ("Ias", 1)
    dcap_worker = make_worker("dcap")
    dcap_info = chain.registration_info(dcap_worker, account("op"))
    quote = "0x" + devnet_ias_report(dcap_info).hex()
    chain.call(
        *call,
        pruntime_info=dcap_info,
        attestation={"SgxDcap": {"quote": quote, "collateral": None}},
    )
    stored = chain.pallet("PhalaRegistry").workers[dcap_worker.pubkey]
    assert (stored["attestation_provider"], stored["confidence_level"]) == ("Dcap", 1)


def test_para_id_must_match() -> None:
    chain = Chain()
    worker = make_worker("r")
    info = chain.registration_info(worker, None, para_id=PARA_ID + 1)
    error = chain.error_of(
        "PhalaRegistry", "register_worker_v2", account("x"), pruntime_info=info, attestation=None
    )
    assert error == "PhalaRegistry.ParachainIdMismatch"


def test_genesis_hash_allowlist_when_configured() -> None:
    allowed = "0x" + "11" * 32
    chain = Chain({"phala": {"genesis_block_hash_allowlist": [allowed]}})
    worker = make_worker("r")
    call = ("PhalaRegistry", "register_worker_v2", account("x"))
    bad = chain.registration_info(worker, None, genesis_block_hash="0x" + "22" * 32)
    assert chain.error_of(*call, pruntime_info=bad, attestation=None) == (
        "PhalaRegistry.GenesisBlockHashRejected"
    )
    chain.call(*call, pruntime_info=chain.registration_info(worker, None), attestation=None)


def test_unsigned_registration_is_bad_origin() -> None:
    chain = Chain()
    info = chain.registration_info(make_worker("r"), None)
    error = chain.error_of(
        "PhalaRegistry", "register_worker_v2", None, pruntime_info=info, attestation=None
    )
    assert error == "System.BadOrigin"


def test_bench_report_sets_initial_score() -> None:
    chain = Chain({"phala": {"benchmark_duration": 4}})
    worker = make_worker("r")
    chain.register(worker, account("op"))
    chain.drain()
    report = b"\x00" + (1).to_bytes(8, "little") + (4 * 2345 + 3).to_bytes(8, "little")
    chain.send(worker, "phala/registry/event", report)
    assert chain.pallet("PhalaRegistry").workers[worker.pubkey]["initial_score"] == 2345
    assert chain.events()[-1] == (
        "PhalaRegistry",
        "InitialScoreSet",
        {"pubkey": worker.pubkey, "init_score": 2345},
    )
    raw = bytes.fromhex(worker.pubkey[2:])
    assert system_payloads(chain)[-1] == b"\x00" + raw + b"\x02" + (2345).to_bytes(4, "little")
    changed = [c[1] for c in chain.drain() if c[0] == "PhalaRegistry"]
    assert changed == ["Workers"]


def test_force_register_worker_is_root_only() -> None:
    chain = Chain()
    args = {
        "pubkey": make_worker("f").pubkey,
        "ecdh_pubkey": make_worker("f").pubkey,
        "operator": None,
    }
    assert chain.error_of("PhalaRegistry", "force_register_worker", account("x"), **args) == (
        "System.BadOrigin"
    )
    chain.call("PhalaRegistry", "force_register_worker", None, **args)
    assert args["pubkey"] in chain.pallet("PhalaRegistry").workers


def endpoint_call(
    chain: Chain, worker_name: str, signing_time: int, *, key_of: str | None = None
) -> dict[str, object]:
    worker = make_worker(worker_name)
    payload = {
        "pubkey": worker.pubkey,
        "versioned_endpoints": {"V1": ["http://127.0.0.1:8000"]},
        "signing_time": signing_time,
    }
    signer = make_worker(key_of or worker_name)
    signature = sr25519.sign(signer.keypair, _scale.encode_endpoint_payload(payload))
    return {"endpoint_payload": payload, "signature": "0x" + bytes(signature).hex()}


def test_update_worker_endpoint() -> None:
    chain = Chain()
    worker = make_worker("e")
    chain.register(worker, None)
    chain.drain()
    now = chain.ctx.timestamp_ms
    call = ("PhalaRegistry", "update_worker_endpoint", account("x"))
    assert chain.error_of(*call, **endpoint_call(chain, "e", now - 1000, key_of="other")) == (
        "PhalaRegistry.InvalidSignature"
    )
    assert chain.error_of(
        *call, **{**endpoint_call(chain, "e", now - 1000), "signature": "0x01"}
    ) == ("PhalaRegistry.InvalidSignatureLength")
    assert chain.error_of(*call, **endpoint_call(chain, "e", now + 1000)) == (
        "PhalaRegistry.InvalidEndpointSigningTime"
    )
    assert chain.error_of(*call, **endpoint_call(chain, "e", now - 5 * 3600 * 1000)) == (
        "PhalaRegistry.InvalidEndpointSigningTime"
    )
    assert chain.error_of(*call, **endpoint_call(chain, "unregistered", now - 1000)) == (
        "PhalaRegistry.InvalidPubKey"
    )
    chain.call(*call, **endpoint_call(chain, "e", now - 1000))
    assert chain.drain() == [
        ("PhalaRegistry", "Endpoints", (worker.pubkey,), {"V1": ["http://127.0.0.1:8000"]})
    ]
