"""The hand-written storage decoders agree with scalecodec, and step aside when the
metadata's types differ from what they read.

Checked against the real Khala metadata and the devnet's own: every value is encoded by
scalecodec with the metadata's type, then decoded both ways.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper.chain import _fast_decode as fast
from poolkeeper.chain._storage_values import StorageValues, registry_types, value_type_ids
from poolkeeper.model.ss58 import encode_address
from poolkeeper_devnet.chain._metadata import build_metadata

KHALA_METADATA = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "khala_metadata.scale"
)
SS58 = 30


class Loaded:
    """One metadata, decoded by scalecodec, with its registry as plain records."""

    def __init__(self, raw: bytes) -> None:
        config = RuntimeConfigurationObject(ss58_format=SS58)
        config.update_type_registry(load_type_registry_preset("legacy"))
        config.update_type_registry(load_type_registry_preset("core"))
        metadata = config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
        metadata.decode()
        config.add_portable_registry(metadata)
        self.config, self.metadata = config, metadata
        self.types = registry_types(metadata)
        self.value_ids = value_type_ids(metadata)

    def encode(self, item: tuple[str, str], value: Any) -> bytes:
        obj = self.config.create_scale_object(f"scale_info::{self.value_ids[item]}")
        return bytes(obj.encode(value).data)

    def scalecodec(self, item: tuple[str, str], data: bytes) -> Any:
        obj = self.config.create_scale_object(
            f"scale_info::{self.value_ids[item]}", data=ScaleBytes(bytearray(data))
        )
        return obj.decode()

    def providers(self) -> dict[int, str]:
        return fast.fieldless_names(
            self.types,
            self.value_ids[("PhalaRegistry", "Workers")],
            ("attestation_provider", "Some"),
        )


@pytest.fixture(scope="module", params=["khala", "devnet"])
def loaded(request: pytest.FixtureRequest) -> Loaded:
    if request.param == "khala":
        if not KHALA_METADATA.exists():
            pytest.skip(f"real Khala metadata not found at {KHALA_METADATA}")
        return Loaded(KHALA_METADATA.read_bytes())
    return Loaded(build_metadata())


def values_of(shape: fast.Shape, providers: dict[int, str]) -> st.SearchStrategy[Any]:
    """Values in scalecodec's ``.value`` form for a shape (scalecodec encodes them too)."""
    match shape:
        case fast.Prim("bool"):
            return st.booleans()
        case fast.Prim(name):
            return st.integers(0, 2 ** int(name[1:]) - 1)
        case fast.Account():
            return st.binary(min_size=32, max_size=32).map(lambda b: encode_address(b, SS58))
        case fast.Bytes32():
            return st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
        case fast.Unit():
            return st.just(())
        case fast.Opt(inner):
            return st.none() | values_of(inner, providers)
        case fast.Vec(inner):
            return st.lists(values_of(inner, providers), max_size=4)
        case fast.Newtype(inner):
            return values_of(inner, providers)
        case fast.Struct(fields):
            return st.fixed_dictionaries({n: values_of(s, providers) for n, s in fields})
        case fast.Enum(variants, _):
            return st.one_of(
                *(
                    st.just(name)
                    if inner is None
                    else values_of(inner, providers).map(lambda v, n=name: {n: v})
                    for _, name, inner in variants
                )
            )
        case fast.Fieldless():
            return st.sampled_from(sorted(providers.values()))
    raise AssertionError(f"no strategy for {shape}")


def test_every_decoder_applies_to_the_metadata(loaded: Loaded) -> None:
    """Both metadatas have exactly the shapes the decoders read (else they would be
    slow, not wrong: this checks that the fast path is really taken)."""
    assert set(fast.fast_items(loaded.types, loaded.value_ids)) == set(fast.ITEMS)


@pytest.mark.parametrize("item", sorted(fast.ITEMS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_decoder_equals_scalecodec(
    loaded: Loaded, item: tuple[str, str], data: st.DataObject
) -> None:
    shape, decoder = fast.ITEMS[item]
    providers = loaded.providers()
    value = data.draw(values_of(shape, providers))
    encoded = loaded.encode(item, value)
    expected = loaded.scalecodec(item, encoded)
    assert decoder(fast.Decoders(SS58, providers), encoded) == expected
    assert expected == value


@pytest.mark.parametrize("item", sorted(fast.ITEMS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_bytes_never_decode_silently(
    loaded: Loaded, item: tuple[str, str], data: st.DataObject
) -> None:
    """Cut or lengthened values raise (so the caller asks scalecodec), never a value."""
    shape, decoder = fast.ITEMS[item]
    providers = loaded.providers()
    encoded = loaded.encode(item, data.draw(values_of(shape, providers)))
    if data.draw(st.booleans()):
        damaged = encoded[: data.draw(st.integers(0, len(encoded) - 1))]
    else:
        damaged = encoded + data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises(fast.DECODE_ERRORS):
        decoder(fast.Decoders(SS58, providers), damaged)


def _field(types: dict[int, Any], type_id: int, name: str) -> dict[str, Any]:
    [field] = [f for f in types[type_id]["def"]["composite"]["fields"] if f["name"] == name]
    return field  # type: ignore[no-any-return]


def _primitive_id(types: dict[int, Any], name: str) -> int:
    return next(i for i, t in types.items() if t["def"] == {"primitive": name})


@pytest.mark.parametrize(
    ("item", "change"),
    [
        (("PhalaComputation", "Sessions"), "cool_down_start becomes u32"),
        (("PhalaComputation", "Sessions"), "a field is renamed"),
        (("PhalaRegistry", "Workers"), "a field is appended"),
        (("PhalaComputation", "Stakes"), "the value becomes u64"),
        (("PhalaComputation", "Sessions"), "a WorkerState variant is added"),
        (("PhalaBasePool", "Pools"), "StakePool moves to index 1"),
    ],
)
def test_a_changed_type_leaves_the_item_to_scalecodec(
    loaded: Loaded, item: tuple[str, str], change: str
) -> None:
    types = copy.deepcopy(loaded.types)
    value_ids = dict(loaded.value_ids)
    type_id = value_ids[item]
    if change == "cool_down_start becomes u32":
        _field(types, type_id, "cool_down_start")["type"] = _primitive_id(types, "u32")
    elif change == "a field is renamed":
        _field(types, type_id, "cool_down_start")["name"] = "cooldown_start"
    elif change == "a field is appended":
        fields = types[type_id]["def"]["composite"]["fields"]
        fields.append({"name": "endpoint", "type": _primitive_id(types, "u32")})
    elif change == "the value becomes u64":
        value_ids[item] = _primitive_id(types, "u64")
    elif change == "a WorkerState variant is added":
        state = types[_field(types, type_id, "state")["type"]]["def"]["variant"]["variants"]
        state.append({"name": "Retired", "fields": [], "index": 5})
    elif change == "StakePool moves to index 1":
        for variant in types[type_id]["def"]["variant"]["variants"]:
            variant["index"] = 1 - variant["index"]
    assert item in fast.fast_items(loaded.types, loaded.value_ids)
    assert item not in fast.fast_items(types, value_ids)
    assert set(fast.fast_items(types, value_ids)) == set(fast.ITEMS) - {item}


def test_storage_values_fall_back_per_value(loaded: Loaded) -> None:
    """A Vault pool (a variant the decoder leaves out) and absent values still decode."""
    values = StorageValues(loaded.metadata, loaded.config, SS58)
    pools = ("PhalaBasePool", "Pools")
    assert values.is_fast(*pools)
    owner = encode_address(bytes(range(32)), SS58)
    basepool = {
        "pid": 7,
        "owner": owner,
        "total_shares": 5,
        "total_value": 6,
        "withdraw_queue": [],
        "value_subscribers": [1],
        "cid": 9,
        "pool_account_id": owner,
    }
    vault_type = loaded.types[loaded.value_ids[pools]]["def"]["variant"]["variants"][1]
    assert vault_type["name"] == "Vault"
    fields = loaded.types[vault_type["fields"][0]["type"]]["def"]["composite"]["fields"]
    vault = {"basepool": basepool}
    for field in fields[1:]:
        record = loaded.types[field["type"]]["def"]
        vault[field["name"]] = [] if "sequence" in record else None if "variant" in record else 3
    encoded = loaded.encode(pools, {"Vault": vault})
    before = values.fallbacks
    assert values.decode(*pools, encoded) == loaded.scalecodec(pools, encoded)
    assert values.decode(*pools, encoded)["Vault"]["basepool"]["pid"] == 7
    assert values.fallbacks == before + 2
    assert values.decode("PhalaRegistry", "Workers", None) is None
    absent = values.decode("System", "Account", None)
    assert absent["nonce"] == 0 and absent["data"]["free"] == 0
    assert values.fallbacks == before + 2
