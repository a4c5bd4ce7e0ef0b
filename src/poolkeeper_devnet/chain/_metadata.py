"""The devnet chain's runtime metadata (SCALE V14) and runtime version.

Every client — substrate-interface in the product, the engine itself — learns pallet and call
indices, storage hashers and type layouts from `state_getMetadata`, so this is what makes the
devnet "speak Khala": the same pallet, call, event, error and storage names and shapes as
Khala spec 1251 (declared in `_types.py` and `_metadata_pallets.py`), under Khala's pallet
indices, or Phala's (`LAYOUTS`): a client built from static Khala metadata (codegen, offline
signers) works unchanged, and running both layouts proves a client resolves indices by name.

`build_metadata(runtime)` returns `b"meta" + SCALE(RuntimeMetadata::V14)`; it is built once
per process and runtime.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cache
from typing import Any, Final

from poolkeeper_devnet.chain._metadata_pallets import (
    ERROR_DOCS,
    PALLETS,
    SPEC_VERSION,
    TRANSACTION_VERSION,
    TYPE_DEFAULT,
    PalletDecl,
    StorageDecl,
)
from poolkeeper_devnet.chain._typereg import (
    Decl,
    Expr,
    Registry,
    VariantDecl,
    enum_of,
    option,
    parse_variants,
    seq,
    text,
)
from poolkeeper_devnet.chain._types import TYPES
from poolkeeper_devnet.codec import encode_compact as compact

_COMMON_INDICES: Final[dict[str, int]] = {
    "System": 0,
    "Timestamp": 1,
    "Utility": 3,
    "Proxy": 5,
    # devnet only (Khala and Phala are parachains): an index neither runtime uses
    "Grandpa": 9,
    "ParachainInfo": 20,
    "ParachainSystem": 21,
    "Balances": 40,
    "TransactionPayment": 41,
    "PhalaMq": 85,
    "PhalaRegistry": 86,
    "PhalaComputation": 87,
}

# Pallet indices per runtime, from `construct_runtime!` of runtime/khala and runtime/phala in
# Phala-Network/khala-parachain (Khala's also from its spec 1251 metadata).
LAYOUTS: Final[dict[str, dict[str, int]]] = {
    "khala": {
        **_COMMON_INDICES,
        "Assets": 89,
        "PhalaStakePoolv2": 93,
        "PhalaWrappedBalances": 95,
        "PhalaBasePool": 96,
    },
    "phala": {
        **_COMMON_INDICES,
        "Assets": 42,
        "PhalaStakePoolv2": 89,
        "PhalaWrappedBalances": 91,
        "PhalaBasePool": 92,
    },
}
DEFAULT_RUNTIME: Final = "khala"
PALLET_INDICES: Final[dict[str, int]] = LAYOUTS[DEFAULT_RUNTIME]
"""Khala's pallet indices, the devnet's default layout."""


def _api_id(name: str) -> str:
    return "0x" + hashlib.blake2b(name.encode(), digest_size=8).hexdigest()


# Runtime APIs the devnet answers through `state_call` (name, version).
RUNTIME_APIS: Final[tuple[tuple[str, int], ...]] = (
    ("Core", 4),
    ("Metadata", 2),
    ("BlockBuilder", 6),
    ("TaggedTransactionQueue", 3),
    ("OffchainWorkerApi", 2),
    ("SessionKeys", 1),
    ("AccountNonceApi", 1),
    ("TransactionPaymentApi", 4),
    ("MqApi", 1),
    ("GrandpaApi", 3),
)

# `state_getRuntimeVersion` result per runtime (Phala's spec of the same release as Khala
# 1251: 1250, transaction version 5).
RUNTIME_VERSIONS: Final[dict[str, dict[str, Any]]] = {
    name: {
        "specName": name,
        "implName": "poolkeeper-devnet",
        "authoringVersion": 1,
        "specVersion": spec,
        "implVersion": 0,
        "apis": [[_api_id(api), version] for api, version in RUNTIME_APIS],
        "transactionVersion": tx_version,
        "stateVersion": 0,
    }
    for name, spec, tx_version in (
        ("khala", SPEC_VERSION, TRANSACTION_VERSION),
        ("phala", 1250, 5),
    )
}
RUNTIME_VERSION: Final[dict[str, Any]] = RUNTIME_VERSIONS[DEFAULT_RUNTIME]

SIGNED_EXTENSIONS: Final[tuple[tuple[str, str, str], ...]] = (
    # (identifier, extension type, additional signed data type)
    ("CheckNonZeroSender", "CheckNonZeroSender", "()"),
    ("CheckSpecVersion", "CheckSpecVersion", "u32"),
    ("CheckTxVersion", "CheckTxVersion", "u32"),
    ("CheckGenesis", "CheckGenesis", "H256"),
    ("CheckMortality", "CheckMortality", "H256"),
    ("CheckNonce", "CheckNonce", "()"),
    ("CheckWeight", "CheckWeight", "()"),
    ("CheckMqSequence", "CheckMqSequence", "()"),
    ("ChargeTransactionPayment", "ChargeTransactionPayment", "()"),
)

_HASHERS: Final[dict[str, int]] = {
    "Blake2_128": 0,
    "Blake2_256": 1,
    "Blake2_128Concat": 2,
    "Twox128": 3,
    "Twox256": 4,
    "Twox64Concat": 5,
    "Identity": 6,
}

_RUNTIME = "khala_parachain_runtime"
_NO_DOCS = seq([])


def _version_constant(runtime: str) -> dict[str, Any]:
    v = RUNTIME_VERSIONS[runtime]
    return {
        "spec_name": v["specName"],
        "impl_name": v["implName"],
        "authoring_version": v["authoringVersion"],
        "spec_version": v["specVersion"],
        "impl_version": v["implVersion"],
        "apis": [(api, ver) for api, ver in v["apis"]],
        "transaction_version": v["transactionVersion"],
        "state_version": v["stateVersion"],
    }


def _pallet_enum(p: PalletDecl, kind: str, body: str) -> Decl:
    params: tuple[str, ...] = ("T", "I") if p.instanced else ("T",)
    if kind == "Event" and p.event_params is not None:
        params = p.event_params
    head = f"{p.module}::{kind}" + (f"<{', '.join(params)}>" if params else "")
    variants = parse_variants(body)
    if kind == "Error":
        variants = [
            replace(v, docs=(ERROR_DOCS[p.name, v.name],)) if (p.name, v.name) in ERROR_DOCS else v
            for v in variants
        ]
    return enum_of(head, variants)


def _declarations(runtime: str) -> dict[str, Decl]:
    """The type table plus each pallet's Call/Event/Error and the outer RuntimeCall/RuntimeEvent."""
    decls = dict(TYPES)
    calls: list[VariantDecl] = []
    events: list[VariantDecl] = []
    for p in PALLETS:
        index = LAYOUTS[runtime][p.name]
        for kind, body, outer in (("Call", p.calls, calls), ("Event", p.events, events)):
            if body is None:
                continue
            decls[f"{p.name}.{kind}"] = _pallet_enum(p, kind, body)
            outer.append(VariantDecl(p.name, index, ((None, Expr(f"{p.name}.{kind}")),)))
        if p.errors is not None:
            decls[f"{p.name}.Error"] = _pallet_enum(p, "Error", p.errors)
    decls["RuntimeCall"] = enum_of(f"{_RUNTIME}::RuntimeCall", calls)
    decls["RuntimeEvent"] = enum_of(f"{_RUNTIME}::RuntimeEvent", events)
    return decls


def _storage_entry(reg: Registry, s: StorageDecl) -> bytes:
    value_id = reg.id_of(s.value)
    if s.keys:
        hashers = [_HASHERS[h] for h, _ in s.keys]
        key_types = [k for _, k in s.keys]
        key_id = reg.id_of(key_types[0] if len(key_types) == 1 else f"({', '.join(key_types)})")
        entry_type = (
            b"\x01" + seq(bytes([h]) for h in hashers) + compact(key_id) + compact(value_id)
        )
    else:
        entry_type = b"\x00" + compact(value_id)
    if s.optional:
        default = b"\x00"
    else:
        value = reg.default_value(value_id) if s.default is TYPE_DEFAULT else s.default
        default = reg.encode_value(value_id, value)
    modifier = b"\x00" if s.optional else b"\x01"
    docs = seq(text(line) for line in s.docs)
    return text(s.name) + modifier + entry_type + compact(len(default)) + default + docs


def _pallet(reg: Registry, p: PalletDecl, runtime: str) -> bytes:
    out = text(p.name)
    if p.storage:
        out += b"\x01" + text(p.name) + seq(_storage_entry(reg, s) for s in p.storage)
    else:
        out += b"\x00"
    out += option(compact(reg.id_of(f"{p.name}.Call")) if p.calls is not None else None)
    out += option(compact(reg.id_of(f"{p.name}.Event")) if p.events is not None else None)
    constants = []
    for c in p.constants:
        tid = reg.id_of(c.type)
        is_version = (p.name, c.name) == ("System", "Version")
        value = _version_constant(runtime) if is_version else c.value
        raw = reg.encode_value(tid, value)
        constants.append(text(c.name) + compact(tid) + compact(len(raw)) + raw + _NO_DOCS)
    out += seq(constants)
    out += option(compact(reg.id_of(f"{p.name}.Error")) if p.errors is not None else None)
    out += bytes([LAYOUTS[runtime][p.name]])
    return out


@cache
def build_metadata(runtime: str = DEFAULT_RUNTIME) -> bytes:
    """`b"meta"` + SCALE `RuntimeMetadata::V14` of the devnet runtime with ``runtime``'s
    (``khala`` or ``phala``) pallet indices (cached per process)."""
    if runtime not in LAYOUTS:
        raise ValueError(f"unknown runtime {runtime!r} (known: {', '.join(LAYOUTS)})")
    reg = Registry(_declarations(runtime))
    reg.id_of("AccountId32")  # type 0, as in every Substrate runtime's registry
    pallets = [_pallet(reg, p, runtime) for p in PALLETS]
    extrinsic_id = reg.id_of(
        "UncheckedExtrinsic<MultiAddress<AccountId32, ()>, RuntimeCall, MultiSignature,"
        " (" + ", ".join(ext for _, ext, _ in SIGNED_EXTENSIONS) + ")>"
    )
    extensions = seq(
        text(identifier) + compact(reg.id_of(ext)) + compact(reg.id_of(extra))
        for identifier, ext, extra in SIGNED_EXTENSIONS
    )
    extrinsic = compact(extrinsic_id) + bytes([4]) + extensions
    runtime_id = reg.id_of("Runtime")
    body = seq(pallets) + extrinsic + compact(runtime_id)
    return b"meta" + bytes([14]) + reg.encode() + body
