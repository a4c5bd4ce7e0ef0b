"""The declaration language and SCALE writer behind the devnet metadata."""

from __future__ import annotations

import pytest
from scalecodec.base import RuntimeConfigurationObject
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper_devnet.chain._typereg import (
    Registry,
    enum,
    parse_expr,
    parse_variants,
    struct,
)
from poolkeeper_devnet.codec import encode_compact as compact


@pytest.mark.parametrize(
    "n", [0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**32, 10**18, 2**128 - 1]
)
def test_compact_matches_scalecodec(n: int) -> None:
    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    assert compact(n) == bytes(rc.create_scale_object("Compact<u128>").encode(n).data)


def test_expressions_parse_nested_generics_tuples_and_arrays() -> None:
    e = parse_expr("Vec<(AccountId32, Option<[u8; 32]>, ())>")
    assert str(e) == "Vec<(AccountId32, Option<[u8; 32]>, ())>"
    with pytest.raises(ValueError):
        parse_expr("Vec<u8")
    with pytest.raises(ValueError):
        parse_expr("u8 u16")


def test_variant_indices_default_to_the_position_after_the_previous_one() -> None:
    variants = parse_variants("A, B(u32), C=6{x: u8, y: Vec<u8>}, D, E=255")
    assert [(v.name, v.index) for v in variants] == [
        ("A", 0),
        ("B", 1),
        ("C", 6),
        ("D", 7),
        ("E", 255),
    ]
    assert [name for name, _ in variants[2].fields] == ["x", "y"]


def test_registry_shares_ids_and_binds_generic_parameters() -> None:
    reg = Registry(
        {
            "Pair": struct("demo::Pair<A, B>", "first: A, second: B"),
            "Kind": enum("demo::Kind", "One, Two(u8)"),
        }
    )
    a = reg.id_of("Pair<u32, Kind>")
    assert reg.id_of("Pair<u32, Kind>") == a
    assert reg.id_of("Pair<u64, Kind>") != a
    node = reg.nodes[a]
    assert node.path == ("demo", "Pair")
    assert [name for name, _ in node.params] == ["A", "B"]
    assert reg.nodes[node.fields[0][1]].primitive == "u32"
    assert reg.encode_value(a, {"first": 5, "second": {"Two": 9}}) == bytes([5, 0, 0, 0, 1, 9])
    assert reg.default_value(a) == {"first": 0, "second": "One"}
    with pytest.raises(KeyError):
        reg.id_of("Missing")
