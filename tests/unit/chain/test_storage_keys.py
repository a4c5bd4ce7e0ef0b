"""Storage keys hashed by the chain adapter equal scalecodec's, for every item it reads.

Checked with the real Khala metadata and the devnet's own; parameters of every kind the
reads use: u64 pids, 0x public keys, SS58 and raw 32-byte accounts, (u32, account) pairs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from substrateinterface.storage import StorageKey

from poolkeeper.chain._storage import _READ_ITEMS, W_PHA_ASSET_ID, _hashed_key, _key_spec
from poolkeeper.chain._storage_values import registry_types
from poolkeeper.model.ss58 import encode_address
from poolkeeper_devnet.chain._metadata import build_metadata

KHALA_METADATA = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "khala_metadata.scale"
)
ACCOUNT = bytes(range(32))
PUBKEY = "0x" + bytes(range(100, 132)).hex()


@pytest.fixture(scope="module", params=["khala", "devnet"])
def substrate(request: pytest.FixtureRequest) -> Any:
    if request.param == "khala":
        if not KHALA_METADATA.exists():
            pytest.skip(f"real Khala metadata not found at {KHALA_METADATA}")
        raw = KHALA_METADATA.read_bytes()
    else:
        raw = build_metadata()
    config = RuntimeConfigurationObject(ss58_format=30)
    config.update_type_registry(load_type_registry_preset("legacy"))
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
    metadata.decode()
    config.add_portable_registry(metadata)
    return SimpleNamespace(metadata=metadata, runtime_config=config)


def params_for(pallet: str, item: str) -> list[list[Any]]:
    if (pallet, item) == ("PhalaBasePool", "Pools"):
        return [[0], [7], [2**40 + 3]]
    if (pallet, item) == ("Assets", "Account"):
        return [[W_PHA_ASSET_ID, encode_address(ACCOUNT, 30)]]
    if pallet == "PhalaRegistry" or item in ("WorkerBindings", "WorkerAssignments"):
        return [[PUBKEY]]
    return [[encode_address(ACCOUNT, 30)], [encode_address(ACCOUNT, 42)], [ACCOUNT]]


@pytest.mark.parametrize(("pallet", "item"), _READ_ITEMS)
def test_hashed_keys_equal_scalecodec_keys(substrate: Any, pallet: str, item: str) -> None:
    spec = _key_spec(substrate, pallet, item, registry_types(substrate.metadata))
    for params in params_for(pallet, item):
        expected = StorageKey.create_from_storage_function(
            pallet,
            item,
            [p if not isinstance(p, bytes) else "0x" + p.hex() for p in params],
            runtime_config=substrate.runtime_config,
            metadata=substrate.metadata,
        )
        assert _hashed_key(spec, params) == "0x" + bytes(expected.data).hex()


def test_an_unhandled_parameter_is_left_to_scalecodec(substrate: Any) -> None:
    spec = _key_spec(substrate, "System", "Account", registry_types(substrate.metadata))
    assert _hashed_key(spec, ["not an address"]) is None
    assert _hashed_key(spec, [12345]) is None
    pools = _key_spec(substrate, "PhalaBasePool", "Pools", registry_types(substrate.metadata))
    assert pools.param_types == ("u64",)
    assert _hashed_key(pools, ["7"]) is None
