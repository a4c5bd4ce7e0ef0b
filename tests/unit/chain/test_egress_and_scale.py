"""Hand-written SCALE pieces agree with scalecodec on the shapes the relay uses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from poolkeeper.chain._scale import compact, header_from_rpc, read_compact, storage_changes
from poolkeeper.chain.egress import EgressDecodeError, split_egress


def _runtime() -> RuntimeConfiguration:
    rc = RuntimeConfiguration()
    rc.update_type_registry(load_type_registry_preset("legacy"))
    rc.update_type_registry(
        {
            "types": {
                "PkOrigin": {
                    "type": "enum",
                    "type_mapping": [
                        ["Pallet", "Bytes"],
                        ["Contract", "H256"],
                        ["Worker", "[u8; 32]"],
                        ["AccountId", "H256"],
                        ["MultiLocation", "Bytes"],
                        ["Gatekeeper", "Null"],
                        ["Cluster", "H256"],
                    ],
                },
                "PkMessage": {
                    "type": "struct",
                    "type_mapping": [
                        ["sender", "PkOrigin"],
                        ["destination", "Bytes"],
                        ["payload", "Bytes"],
                    ],
                },
                "PkSigned": {
                    "type": "struct",
                    "type_mapping": [
                        ["message", "PkMessage"],
                        ["sequence", "u64"],
                        ["signature", "Bytes"],
                    ],
                },
                "PkEgress": "Vec<(PkOrigin, Vec<PkSigned>)>",
            }
        }
    )
    return rc


@settings(deadline=None)  # the first example builds scalecodec's process-wide registry
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_compact_matches_scalecodec(n: int) -> None:
    encoded = _runtime().create_scale_object("Compact<u128>").encode(n).data
    assert compact(n) == encoded
    assert read_compact(bytes(encoded)) == (n, len(encoded))


def test_egress_split_keeps_exact_message_bytes() -> None:
    rc = _runtime()
    worker = "0x" + "11" * 32
    messages = [
        {
            "message": {
                "sender": {"Worker": worker},
                "destination": "0x" + b"phala/registry/event".hex(),
                "payload": "0x00" + "05" * 16,
            },
            "sequence": seq,
            "signature": "0x" + "ab" * 64,
        }
        for seq in (3, 4)
    ]
    value = [({"Worker": worker}, messages), ({"Pallet": "0x" + b"x".hex()}, [])]
    data = bytes(rc.create_scale_object("PkEgress").encode(value).data)
    split = split_egress(data)
    assert [m.sequence for m in split] == [3, 4]
    one = rc.create_scale_object("PkSigned", data=ScaleBytes(split[1].signed_message))
    one.decode()
    assert one.value["sequence"] == 4
    assert split[0].sender == bytes([2]) + bytes.fromhex("11" * 32)
    with pytest.raises(EgressDecodeError):
        split_egress(data + b"\x00")


def test_header_and_storage_changes_encode_like_scalecodec() -> None:
    rc = _runtime()
    header = {
        "parentHash": "0x" + "01" * 32,
        "number": "0x1f4",
        "stateRoot": "0x" + "02" * 32,
        "extrinsicsRoot": "0x" + "03" * 32,
        "digest": {"logs": ["0x0804aabbccdd"]},
    }
    ours = header_from_rpc(header)
    expected = rc.create_scale_object("(H256, Compact<u32>, H256, H256, Vec<Bytes>)").encode(
        ("0x" + "01" * 32, 500, "0x" + "02" * 32, "0x" + "03" * 32, [])
    )
    assert ours[: 32 + 2 + 64] == bytes(expected.data)[: 32 + 2 + 64]
    assert ours[-7:] == bytes.fromhex("04") + bytes.fromhex("0804aabbccdd")
    changes = storage_changes([["0x01", "0x02"], ["0x03", None]], [])
    main = rc.create_scale_object("Vec<(Bytes, Option<Bytes>)>").encode(
        [("0x01", "0x02"), ("0x03", None)]
    )
    assert changes == bytes(main.data) + b"\x00"  # and an empty child-changes vector
