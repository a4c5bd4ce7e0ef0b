"""The devnet metadata works with scalecodec and substrate-interface as a real node's does.

substrate-interface runs here against an in-process fake transport (no server, no socket):
it loads the devnet metadata through its own init_runtime, then composes, signs, encodes
and decodes calls and reads constants and storage exactly as the product will.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from scalecodec.utils.ss58 import ss58_encode
from substrateinterface import ExtrinsicReceipt, Keypair, SubstrateInterface
from substrateinterface.storage import StorageKey

from poolkeeper_devnet.chain._metadata import (
    LAYOUTS,
    PALLET_INDICES,
    RUNTIME_VERSION,
    build_metadata,
)

GENESIS = "0x" + "11" * 32
HEAD = "0x" + "22" * 32
WORKER = "0x" + "ab" * 32
SESSION = "0x" + "cd" * 32


def _decode(data: bytes) -> Any:
    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    obj = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(data))
    obj.decode()
    return rc, obj


class _OfflineSubstrate(SubstrateInterface):  # type: ignore[misc]
    """substrate-interface with its JSON-RPC answered in-process by a fixed table."""

    storage: dict[str, str | None]

    def rpc_request(self, method: str, params: Any, result_handler: Any = None) -> Any:
        answers: dict[str, Any] = {
            "system_chain": "poolkeeper devnet",
            "system_properties": {"ss58Format": 30, "tokenDecimals": 12, "tokenSymbol": "PHA"},
            "rpc_methods": {"methods": ["system_accountNextIndex"]},
            "chain_getHead": HEAD,
            "chain_getFinalizedHead": HEAD,
            "chain_getBlockHash": GENESIS,
            "chain_getHeader": {
                "parentHash": GENESIS,
                "number": "0x1",
                "stateRoot": GENESIS,
                "extrinsicsRoot": GENESIS,
                "digest": {"logs": []},
            },
            "chain_getRuntimeVersion": RUNTIME_VERSION,
            "state_getRuntimeVersion": RUNTIME_VERSION,
            "state_getMetadata": "0x" + build_metadata().hex(),
            "system_accountNextIndex": 7,
        }
        if method in ("state_getStorageAt", "state_getStorage"):
            return {"jsonrpc": "2.0", "id": 1, "result": self.storage.get(params[0])}
        return {"jsonrpc": "2.0", "id": 1, "result": answers[method]}


@pytest.fixture(scope="module")
def decoded() -> tuple[Any, Any]:
    return _decode(build_metadata())


@pytest.fixture(scope="module")
def substrate() -> _OfflineSubstrate:
    s = _OfflineSubstrate(url="http://127.0.0.1:9")
    s.storage = {}
    s.init_runtime()
    return s


def test_metadata_is_prefixed_v14_and_reencodes_byte_identical(decoded: tuple[Any, Any]) -> None:
    data = build_metadata()
    assert data[:4] == b"meta" and data[4] == 14
    rc, obj = decoded
    again = rc.create_scale_object("MetadataVersioned").encode(obj.value)
    assert bytes(again.data) == data


def test_build_is_cached() -> None:
    assert build_metadata() is build_metadata()


def test_pallet_indices_and_names_are_the_declared_ones(decoded: tuple[Any, Any]) -> None:
    _, obj = decoded
    pallets = {p["name"]: p["index"] for p in obj.value[1]["V14"]["pallets"]}
    assert pallets == PALLET_INDICES
    assert (pallets["Balances"], pallets["PhalaStakePoolv2"], pallets["PhalaBasePool"]) == (
        40,
        93,
        96,
    )  # Khala's


def test_phala_runtime_serves_phalas_indices_and_version() -> None:
    _, obj = _decode(build_metadata("phala"))
    pallets = {p["name"]: p for p in obj.value[1]["V14"]["pallets"]}
    assert {name: p["index"] for name, p in pallets.items()} == LAYOUTS["phala"]
    assert (pallets["Assets"]["index"], pallets["PhalaStakePoolv2"]["index"]) == (42, 89)
    (version,) = [c for c in pallets["System"]["constants"] if c["name"] == "Version"]
    raw = bytes.fromhex(version["value"][2:])
    assert raw[1 : 1 + len(b"phala")] == b"phala"  # spec_name (compact length 5, then text)
    with pytest.raises(ValueError, match="unknown runtime"):
        build_metadata("kusama")


def test_extrinsic_format_is_v4_with_khala_signed_extensions(decoded: tuple[Any, Any]) -> None:
    _, obj = decoded
    ext = obj.value[1]["V14"]["extrinsic"]
    assert ext["version"] == 4
    assert [e["identifier"] for e in ext["signed_extensions"]] == [
        "CheckNonZeroSender",
        "CheckSpecVersion",
        "CheckTxVersion",
        "CheckGenesis",
        "CheckMortality",
        "CheckNonce",
        "CheckWeight",
        "CheckMqSequence",
        "ChargeTransactionPayment",
    ]


def test_runtime_version_lists_real_api_ids() -> None:
    apis = dict((api, ver) for api, ver in RUNTIME_VERSION["apis"])
    for name in ("Core", "Metadata", "BlockBuilder", "TaggedTransactionQueue"):
        assert "0x" + hashlib.blake2b(name.encode(), digest_size=8).hexdigest() in apis
    assert apis["0xbc9d89904f5b923f"] == 1  # AccountNonceApi
    assert apis["0x37c8bb1350a9a2a8"] == 4  # TransactionPaymentApi
    assert RUNTIME_VERSION["specName"] == "khala"
    assert RUNTIME_VERSION["transactionVersion"] == 6


def test_substrate_interface_reads_ss58_prefix_and_constants(substrate: _OfflineSubstrate) -> None:
    assert substrate.ss58_format == 30
    assert substrate.get_constant("PhalaStakePoolv2", "MaxPoolWorkers").value == 200
    assert substrate.get_constant("Balances", "ExistentialDeposit").value == 10**10
    assert substrate.get_constant("PhalaWrappedBalances", "WPhaAssetId").value == 10000
    assert substrate.get_constant("System", "SS58Prefix").value == 30
    version = substrate.get_constant("System", "Version").value
    assert version["spec_version"] == RUNTIME_VERSION["specVersion"]
    assert version["impl_name"] == RUNTIME_VERSION["implName"]
    assert [list(a) for a in version["apis"]] == RUNTIME_VERSION["apis"]


def test_compose_add_worker_and_force_batch_round_trip(substrate: _OfflineSubstrate) -> None:
    add = substrate.compose_call("PhalaStakePoolv2", "add_worker", {"pid": 3, "pubkey": WORKER})
    index = PALLET_INDICES["PhalaStakePoolv2"]
    assert bytes(add.data.data) == bytes([index, 1]) + (3).to_bytes(8, "little") + bytes.fromhex(
        WORKER[2:]
    )
    start = substrate.compose_call(
        "PhalaStakePoolv2", "start_computing", {"pid": 3, "worker": WORKER, "stake": 10**13}
    )
    batch = substrate.compose_call("Utility", "force_batch", {"calls": [add, start]})
    decoded = substrate.create_scale_object("Call", data=ScaleBytes(batch.data.data))
    decoded.decode()
    assert decoded.value["call_module"] == "Utility"
    assert decoded.value["call_function"] == "force_batch"
    inner = decoded.value["call_args"][0]["value"]
    assert [c["call_function"] for c in inner] == ["add_worker", "start_computing"]
    assert inner[1]["call_args"][2]["value"] == 10**13


def test_signed_proxy_extrinsic_round_trip(substrate: _OfflineSubstrate) -> None:
    owner = Keypair.create_from_uri("//Alice", ss58_format=30)
    manager = Keypair.create_from_uri("//Bob", ss58_format=30)
    add = substrate.compose_call("PhalaStakePoolv2", "add_worker", {"pid": 3, "pubkey": WORKER})
    call = substrate.compose_call(
        "Proxy",
        "proxy",
        {"real": owner.ss58_address, "force_proxy_type": "StakePoolManager", "call": add},
    )
    xt = substrate.create_signed_extrinsic(call, manager, era={"period": 64}, tip=5)
    decoded = substrate.create_scale_object(
        "Extrinsic", data=ScaleBytes(xt.data.data), metadata=substrate.metadata
    )
    decoded.decode()
    assert decoded.value["nonce"] == 7
    assert decoded.value["tip"] == 5
    assert decoded.value["address"] == manager.ss58_address
    args = {a["name"]: a["value"] for a in decoded.value["call"]["call_args"]}
    assert args["force_proxy_type"] == "StakePoolManager"
    assert args["call"]["call_function"] == "add_worker"


def test_sessions_storage_key_and_value_decode(substrate: _OfflineSubstrate) -> None:
    key = StorageKey.create_from_storage_function(
        "PhalaComputation",
        "Sessions",
        [SESSION],
        runtime_config=substrate.runtime_config,
        metadata=substrate.metadata,
    )
    import xxhash as xx

    prefix = xx.xxh64(b"PhalaComputation", seed=0).digest()[::-1]
    prefix += xx.xxh64(b"PhalaComputation", seed=1).digest()[::-1]
    assert key.data[:16] == prefix
    # Twox64Concat: xxh64 of the key, then the key itself.
    assert key.data[-32:] == bytes.fromhex(SESSION[2:])
    assert key.data[-40:-32] == xx.xxh64(bytes.fromhex(SESSION[2:]), seed=0).digest()[::-1]
    value = (
        bytes([1])  # WorkerIdle
        + (5).to_bytes(16, "little")
        + (6).to_bytes(16, "little")
        + (7).to_bytes(8, "little")
        + (100).to_bytes(4, "little")
        + (90).to_bytes(4, "little")
        + (1000).to_bytes(8, "little")
        + (1).to_bytes(8, "little")
        + (2).to_bytes(8, "little")
        + (0).to_bytes(8, "little")
        + (42).to_bytes(16, "little")
    )
    substrate.storage = {"0x" + key.data.hex(): "0x" + value.hex()}
    session = substrate.query("PhalaComputation", "Sessions", [SESSION]).value
    assert session["state"] == "WorkerIdle"
    assert session["benchmark"]["p_init"] == 100
    assert session["stats"]["total_reward"] == 42
    # Absent Optional entry decodes as None; absent Default entry as its default.
    substrate.storage = {}
    assert substrate.query("PhalaComputation", "Sessions", [SESSION]).value is None
    assert substrate.query("PhalaBasePool", "PoolCount").value == 0


def test_events_encode_and_a_module_error_resolves_by_name(substrate: _OfflineSubstrate) -> None:
    """What the engine writes to System.Events decodes into a receipt with the real error name."""
    events_fn = substrate.metadata.get_metadata_pallet("System").get_storage_function("Events")
    events = substrate.runtime_config.create_scale_object(
        events_fn.get_value_type_string(), metadata=substrate.metadata
    )
    errors = [e.name for e in substrate.metadata.get_metadata_pallet("PhalaStakePoolv2").errors]
    error_index = errors.index("UnauthorizedPoolOwner")
    info = {"weight": {"ref_time": 1, "proof_size": 2}, "class": "Normal", "pays_fee": "Yes"}
    failed = {
        "dispatch_error": {
            "Module": {
                "index": PALLET_INDICES["PhalaStakePoolv2"],
                "error": f"0x{error_index:02x}000000",
            }
        },
        "dispatch_info": info,
    }
    added = {"pid": 1, "worker": WORKER, "session": SESSION}
    encoded = events.encode(
        [
            {
                "phase": {"ApplyExtrinsic": 0},
                "event": {"System": {"ExtrinsicSuccess": {"dispatch_info": info}}},
                "topics": [],
            },
            {
                "phase": {"ApplyExtrinsic": 1},
                "event": {"PhalaStakePoolv2": {"PoolWorkerAdded": added}},
                "topics": [],
            },
            {
                "phase": {"ApplyExtrinsic": 1},
                "event": {"System": {"ExtrinsicFailed": failed}},
                "topics": [],
            },
        ]
    )
    key = StorageKey.create_from_storage_function(
        "System", "Events", [], runtime_config=substrate.runtime_config, metadata=substrate.metadata
    )
    substrate.storage = {"0x" + key.data.hex(): str(encoded)}
    receipt = ExtrinsicReceipt(substrate, block_hash=HEAD, extrinsic_idx=1)
    assert [e.value["event_id"] for e in receipt.triggered_events] == [
        "PoolWorkerAdded",
        "ExtrinsicFailed",
    ]
    attributes = receipt.triggered_events[0].value["attributes"]
    assert attributes["session"] == ss58_encode(SESSION, 30)  # AccountId32: SS58 with prefix 30
    assert attributes["worker"] == WORKER  # sr25519 Public: hex
    assert receipt.is_success is False
    assert receipt.error_message["name"] == "UnauthorizedPoolOwner"
    assert receipt.error_message["docs"]


def test_assets_account_double_map_key_layout(substrate: _OfflineSubstrate) -> None:
    import xxhash as xx

    owner = Keypair.create_from_uri("//Alice", ss58_format=30)
    key = StorageKey.create_from_storage_function(
        "Assets",
        "Account",
        [10000, owner.ss58_address],
        runtime_config=substrate.runtime_config,
        metadata=substrate.metadata,
    )
    asset = (10000).to_bytes(4, "little")
    expected = (
        xx.xxh64(b"Assets", seed=0).digest()[::-1]
        + xx.xxh64(b"Assets", seed=1).digest()[::-1]
        + xx.xxh64(b"Account", seed=0).digest()[::-1]
        + xx.xxh64(b"Account", seed=1).digest()[::-1]
        + hashlib.blake2b(asset, digest_size=16).digest()
        + asset
        + hashlib.blake2b(owner.public_key, digest_size=16).digest()
        + owner.public_key
    )
    assert key.data == expected


def test_register_worker_v2_with_a_dcap_report_round_trips(substrate: _OfflineSubstrate) -> None:
    info = {
        "version": 1,
        "machine_id": "0x0102",
        "pubkey": WORKER,
        "ecdh_pubkey": WORKER,
        "genesis_block_hash": GENESIS,
        "features": [1, 4],
        "operator": None,
        "para_id": 2035,
        "max_consensus_version": 0,
    }
    collateral = {
        "SgxV30": {
            "pck_crl_issuer_chain": "a",
            "root_ca_crl": "b",
            "pck_crl": "c",
            "tcb_info_issuer_chain": "d",
            "tcb_info": "e",
            "tcb_info_signature": "0x01",
            "qe_identity_issuer_chain": "f",
            "qe_identity": "g",
            "qe_identity_signature": "0x02",
        }
    }
    report = {"SgxDcap": {"quote": "0xaabb", "collateral": collateral}}
    call = substrate.compose_call(
        "PhalaRegistry", "register_worker_v2", {"pruntime_info": info, "attestation": report}
    )
    decoded = substrate.create_scale_object("Call", data=ScaleBytes(call.data.data))
    decoded.decode()
    args = {a["name"]: a["value"] for a in decoded.value["call_args"]}
    assert args["pruntime_info"]["para_id"] == 2035
    assert args["attestation"]["SgxDcap"]["quote"] == "0xaabb"
    assert args["attestation"]["SgxDcap"]["collateral"]["SgxV30"]["qe_identity"] == "g"
    none = substrate.compose_call(
        "PhalaRegistry", "register_worker_v2", {"pruntime_info": info, "attestation": None}
    )
    assert bytes(none.data.data).endswith(b"\x00")  # the devnet's "no attestation"


def test_workers_entry_with_dcap_provider_decodes(substrate: _OfflineSubstrate) -> None:
    key = StorageKey.create_from_storage_function(
        "PhalaRegistry",
        "Workers",
        [WORKER],
        runtime_config=substrate.runtime_config,
        metadata=substrate.metadata,
    )
    owner = Keypair.create_from_uri("//Alice", ss58_format=30)
    value = (
        bytes.fromhex(WORKER[2:]) * 2
        + (7).to_bytes(4, "little")
        + (1_700_000_000).to_bytes(8, "little")
        + b"\x01"
        + owner.public_key
        + b"\x01\x02"  # Some(Dcap)
        + b"\x01"
        + b"\x01"
        + (2500).to_bytes(4, "little")
        + b"\x04"
        + (1).to_bytes(4, "little")
    )
    substrate.storage = {"0x" + key.data.hex(): "0x" + value.hex()}
    worker = substrate.query("PhalaRegistry", "Workers", [WORKER]).value
    assert worker["attestation_provider"] == "Dcap"
    assert worker["operator"] == owner.ss58_address
    assert worker["initial_score"] == 2500
    assert worker["features"] == [1]
