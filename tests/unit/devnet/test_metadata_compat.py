"""Everything the devnet metadata declares is named and shaped as in the real Khala metadata.

Compared against ../shared/data/khala_metadata.scale (Khala spec 1251): for every pallet,
storage entry, call, event, error and constant the devnet declares, the names, argument
names, storage hashers, modifiers, defaults and type shapes (paths, field names, variant
names and indices, recursively) must match. Pallet indices may differ. Listed exceptions:
the devnet-only Grandpa pallet, the DCAP variants (AttestationReport::SgxDcap,
AttestationProvider::Dcap), and the constants whose devnet values differ on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper_devnet.chain._metadata import build_metadata
from poolkeeper_devnet.chain._metadata_pallets import DEVNET_CONSTANT_VALUES, DEVNET_ONLY_PALLETS

KHALA = Path(
    os.environ.get("POOLKEEPER_KHALA_METADATA")
    or Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "khala_metadata.scale"
)
"""The real Khala metadata (spec 1251); POOLKEEPER_KHALA_METADATA names another place."""

# Variants the devnet adds to Khala's 2023 types (present in current Phala source).
DEVNET_VARIANTS = {
    ("phala_types", "AttestationReport"): {"SgxDcap"},
    ("phala_types", "AttestationProvider"): {"Dcap"},
}
# The outer enums list only the devnet's pallets, under its own indices: compared by name.
OUTER = {("khala_parachain_runtime", "RuntimeCall"), ("khala_parachain_runtime", "RuntimeEvent")}


class Meta:
    """A decoded V14 metadata with a structural view of its types."""

    def __init__(self, data: bytes) -> None:
        rc = RuntimeConfigurationObject()
        rc.update_type_registry(load_type_registry_preset("core"))
        obj = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(data))
        obj.decode()
        self.value: dict[str, Any] = obj.value[1]["V14"]
        self.types = {t["id"]: t["type"] for t in self.value["types"]["types"]}
        self.pallets = {p["name"]: p for p in self.value["pallets"]}
        self._shapes: dict[int, Any] = {}

    def shape(self, tid: int) -> Any:
        """A comparable nested tuple: paths, field names and variants, not ids."""
        if tid in self._shapes:
            return self._shapes[tid]
        t = self.types[tid]
        path = tuple(t["path"])
        if path in OUTER:
            return ("outer", path)
        self._shapes[tid] = ("recursive", path)
        ((kind, body),) = t["def"].items()
        shape: Any
        if kind == "composite":
            shape = (kind, path, self._fields(body["fields"]))
        elif kind == "variant":
            skip = DEVNET_VARIANTS.get(path, set())
            shape = (
                kind,
                path,
                tuple(
                    (v["name"], v["index"], self._fields(v["fields"]))
                    for v in sorted(body["variants"], key=lambda v: v["index"])
                    if v["name"] not in skip
                ),
            )
        elif kind in ("sequence", "compact"):
            shape = (kind, self.shape(body["type"]))
        elif kind == "array":
            shape = (kind, body["len"], self.shape(body["type"]))
        elif kind == "tuple":
            shape = (kind, tuple(self.shape(i) for i in body))
        elif kind == "primitive":
            shape = (kind, body)
        else:
            shape = (kind, str(body))
        self._shapes[tid] = shape
        return shape

    def _fields(self, fields: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple((f["name"], self.shape(f["type"])) for f in fields)

    def variants(self, pallet: str, kind: str) -> dict[str, dict[str, Any]]:
        ref = self.pallets[pallet][kind]
        if ref is None:
            return {}
        body = self.types[ref["ty"]]["def"]["variant"]
        return {v["name"]: v for v in body["variants"]}


def _raw(value: str) -> bytes:
    """scalecodec shows a byte vector as text when it is valid UTF-8, else as 0x-hex."""
    if value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    return value.encode()


@pytest.fixture(scope="module")
def khala() -> Meta:
    if not KHALA.exists():
        print(f"skipped: the real Khala metadata is not at {KHALA}")
        pytest.skip(f"the real Khala metadata is not at {KHALA}")
    return Meta(KHALA.read_bytes())


@pytest.fixture(scope="module")
def devnet() -> Meta:
    return Meta(build_metadata())


def _compared_pallets(devnet: Meta) -> list[str]:
    return [name for name in devnet.pallets if name not in DEVNET_ONLY_PALLETS]


def test_every_devnet_pallet_exists_in_khala(devnet: Meta, khala: Meta) -> None:
    missing = [p for p in _compared_pallets(devnet) if p not in khala.pallets]
    assert missing == []
    assert set(DEVNET_ONLY_PALLETS) <= set(devnet.pallets)
    assert "Grandpa" not in khala.pallets


def test_every_pallet_index_is_khalas(devnet: Meta, khala: Meta) -> None:
    ours = {name: devnet.pallets[name]["index"] for name in _compared_pallets(devnet)}
    assert ours == {name: khala.pallets[name]["index"] for name in ours}
    used = {p["index"] for p in khala.pallets.values()}
    assert all(devnet.pallets[name]["index"] not in used for name in DEVNET_ONLY_PALLETS)


def test_storage_entries_match(devnet: Meta, khala: Meta) -> None:
    problems: list[str] = []
    for pallet in _compared_pallets(devnet):
        ours = devnet.pallets[pallet]["storage"]
        if ours is None:
            continue
        theirs = {e["name"]: e for e in khala.pallets[pallet]["storage"]["entries"]}
        assert ours["prefix"] == khala.pallets[pallet]["storage"]["prefix"]
        for entry in ours["entries"]:
            where = f"{pallet}.{entry['name']}"
            real = theirs.get(entry["name"])
            if real is None:
                problems.append(f"{where}: not in Khala")
                continue
            if entry["modifier"] != real["modifier"]:
                problems.append(f"{where}: modifier {entry['modifier']} != {real['modifier']}")
            if _raw(entry["default"]) != _raw(real["default"]):
                problems.append(
                    f"{where}: default {_raw(entry['default']).hex()}"
                    f" != {_raw(real['default']).hex()}"
                )
            ((kind, ty),) = entry["type"].items()
            ((real_kind, real_ty),) = real["type"].items()
            if kind != real_kind:
                problems.append(f"{where}: {kind} != {real_kind}")
            elif kind == "Plain":
                if devnet.shape(ty) != khala.shape(real_ty):
                    problems.append(f"{where}: value shape differs")
            else:
                if ty["hashers"] != real_ty["hashers"]:
                    problems.append(f"{where}: hashers {ty['hashers']} != {real_ty['hashers']}")
                if devnet.shape(ty["key"]) != khala.shape(real_ty["key"]):
                    problems.append(f"{where}: key shape differs")
                if devnet.shape(ty["value"]) != khala.shape(real_ty["value"]):
                    problems.append(f"{where}: value shape differs")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("kind", ["calls", "event"])
def test_calls_and_events_match_by_name_index_and_argument_shapes(
    devnet: Meta, khala: Meta, kind: str
) -> None:
    problems: list[str] = []
    for pallet in _compared_pallets(devnet):
        theirs = khala.variants(pallet, kind)
        for name, ours in devnet.variants(pallet, kind).items():
            where = f"{pallet}.{name}"
            real = theirs.get(name)
            if real is None:
                problems.append(f"{where}: not in Khala")
                continue
            if ours["index"] != real["index"]:
                problems.append(f"{where}: index {ours['index']} != {real['index']}")
            if [f["name"] for f in ours["fields"]] != [f["name"] for f in real["fields"]]:
                problems.append(f"{where}: argument names differ")
            elif devnet._fields(ours["fields"]) != khala._fields(real["fields"]):
                problems.append(f"{where}: argument shapes differ")
    assert problems == [], "\n".join(problems)


def test_errors_are_khala_errors_complete_and_in_order(devnet: Meta, khala: Meta) -> None:
    # substrate-interface resolves a module error by its position in the enum: no gaps allowed.
    for pallet in _compared_pallets(devnet):
        ours = devnet.variants(pallet, "error")
        theirs = khala.variants(pallet, "error")
        assert [(n, v["index"]) for n, v in ours.items()] == [
            (n, v["index"]) for n, v in theirs.items()
        ], pallet


def test_constants_match(devnet: Meta, khala: Meta) -> None:
    problems: list[str] = []
    for pallet in _compared_pallets(devnet):
        theirs = {c["name"]: c for c in khala.pallets[pallet]["constants"]}
        for const in devnet.pallets[pallet]["constants"]:
            where = f"{pallet}.{const['name']}"
            real = theirs.get(const["name"])
            if real is None:
                problems.append(f"{where}: not in Khala")
                continue
            if devnet.shape(const["type"]) != khala.shape(real["type"]):
                problems.append(f"{where}: type shape differs")
            if (pallet, const["name"]) in DEVNET_CONSTANT_VALUES:
                continue
            if _raw(const["value"]) != _raw(real["value"]):
                problems.append(
                    f"{where}: value {_raw(const['value']).hex()} != {_raw(real['value']).hex()}"
                )
    assert problems == [], "\n".join(problems)


def test_the_product_facing_items_are_declared(devnet: Meta) -> None:
    """The calls, storage and events the product and the simulators rely on are all present."""
    needed: dict[str, dict[str, set[str]]] = {
        "System": {
            "storage": {"Account", "Events", "Number", "BlockHash", "ParentHash"},
            "event": {"ExtrinsicSuccess", "ExtrinsicFailed"},
        },
        "Timestamp": {"storage": {"Now"}, "calls": {"set"}},
        "Balances": {
            "calls": {
                "transfer_keep_alive",
                "transfer_allow_death",
                "transfer",
                "force_set_balance",
            },
            "event": {"Transfer", "Withdraw", "Deposit", "Endowed"},
            "error": {"InsufficientBalance", "ExistentialDeposit", "Expendability"},
        },
        "TransactionPayment": {"event": {"TransactionFeePaid"}},
        "Utility": {
            "calls": {"batch", "batch_all", "force_batch"},
            "event": {
                "ItemCompleted",
                "ItemFailed",
                "BatchCompleted",
                "BatchCompletedWithErrors",
                "BatchInterrupted",
            },
        },
        "Proxy": {
            "calls": {"proxy", "add_proxy", "remove_proxy"},
            "storage": {"Proxies"},
            "event": {"ProxyExecuted", "ProxyAdded"},
        },
        "PhalaMq": {
            "calls": {"sync_offchain_message"},
            "storage": {"OffchainIngress", "OutboundMessages"},
            "error": {"BadSequence"},
        },
        "PhalaRegistry": {
            "calls": {"register_worker", "register_worker_v2", "update_worker_endpoint"},
            "storage": {"Workers", "WorkerAddedAt", "Endpoints"},
            "event": {"WorkerAdded", "WorkerUpdated", "InitialScoreSet"},
            "error": {
                "GenesisBlockHashRejected",
                "NoneAttestationDisabled",
                "ParachainIdMismatch",
                "InvalidIASSigningCert",
            },
        },
        "PhalaComputation": {
            "calls": {"unbind"},
            "storage": {
                "WorkerBindings",
                "SessionBindings",
                "Sessions",
                "Stakes",
                "CoolDownPeriod",
            },
            "event": {
                "SessionBound",
                "SessionUnbound",
                "WorkerStarted",
                "WorkerStopped",
                "WorkerReclaimed",
                "WorkerEnterUnresponsive",
                "WorkerExitUnresponsive",
                "SessionSettled",
                "BenchmarkUpdated",
            },
            "error": {"CoolDownNotReady", "InsufficientStake", "TooMuchStake", "BenchmarkTooLow"},
        },
        "PhalaStakePoolv2": {
            "calls": {
                "create",
                "add_worker",
                "remove_worker",
                "start_computing",
                "stop_computing",
                "restart_computing",
                "reclaim_pool_worker",
                "contribute",
                "set_cap",
                "set_payout_pref",
            },
            "storage": {"WorkerAssignments", "SubAccountPreimages"},
            "event": {
                "PoolCreated",
                "PoolWorkerAdded",
                "PoolWorkerRemoved",
                "WorkingStarted",
                "WorkerReclaimed",
                "Contribution",
            },
            "error": {
                "UnauthorizedOperator",
                "UnauthorizedPoolOwner",
                "BenchmarkMissing",
                "InsufficientFreeStake",
                "WorkerIsNotReady",
                "FailedToBindSessionAndWorker",
            },
        },
        "PhalaBasePool": {"storage": {"Pools", "PoolCount"}},
        "Assets": {"storage": {"Account", "Asset"}, "event": {"Transferred", "Issued", "Burned"}},
        "PhalaWrappedBalances": {"calls": {"wrap", "unwrap"}, "event": {"Wrapped", "Unwrapped"}},
        "Grandpa": {"storage": {"CurrentSetId", "Authorities"}},
        "ParachainInfo": {"storage": {"ParachainId"}},
    }
    for pallet, kinds in needed.items():
        for kind, names in kinds.items():
            if kind == "storage":
                have = {e["name"] for e in devnet.pallets[pallet]["storage"]["entries"]}
            else:
                have = set(devnet.variants(pallet, kind))
            assert names <= have, (pallet, kind, names - have)


def test_dcap_extensions_are_present(devnet: Meta) -> None:
    by_path = {tuple(t["path"]): t for t in devnet.types.values()}
    report = by_path[("phala_types", "AttestationReport")]["def"]["variant"]["variants"]
    assert [(v["name"], v["index"]) for v in report] == [("SgxIas", 0), ("SgxDcap", 1)]
    assert [f["name"] for f in report[1]["fields"]] == ["quote", "collateral"]
    provider = by_path[("phala_types", "AttestationProvider")]["def"]["variant"]["variants"]
    assert [(v["name"], v["index"]) for v in provider] == [("Root", 0), ("Ias", 1), ("Dcap", 2)]


def test_extrinsic_types_match(devnet: Meta, khala: Meta) -> None:
    ours, theirs = devnet.value["extrinsic"], khala.value["extrinsic"]
    assert ours["version"] == theirs["version"] == 4
    assert [
        (e["identifier"], devnet.shape(e["ty"]), devnet.shape(e["additional_signed"]))
        for e in ours["signed_extensions"]
    ] == [
        (e["identifier"], khala.shape(e["ty"]), khala.shape(e["additional_signed"]))
        for e in theirs["signed_extensions"]
    ]
    our_params = {p["name"]: p["type"] for p in devnet.types[ours["ty"]]["params"]}
    real_params = {p["name"]: p["type"] for p in khala.types[theirs["ty"]]["params"]}
    for name in ("Address", "Signature", "Extra"):
        assert devnet.shape(our_params[name]) == khala.shape(real_params[name]), name
    assert devnet.types[our_params["Call"]]["path"] == ["khala_parachain_runtime", "RuntimeCall"]


def test_outer_enums_name_the_devnet_pallets(devnet: Meta) -> None:
    by_path = {tuple(t["path"]): t for t in devnet.types.values()}
    for outer, kind in (("RuntimeCall", "calls"), ("RuntimeEvent", "event")):
        variants = by_path[("khala_parachain_runtime", outer)]["def"]["variant"]["variants"]
        expected = {(name, p["index"]) for name, p in devnet.pallets.items() if p[kind] is not None}
        assert {(v["name"], v["index"]) for v in variants} == expected
