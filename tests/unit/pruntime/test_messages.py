"""Every pRuntime message round-trips, and its bytes are what google.protobuf produces.

The product's dataclasses are converted to and from the classes generated from
proto/pruntime_rpc.proto; their declared field numbers and kinds must be the
descriptor's, and a round trip through the generated class must keep every value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from poolkeeper.pruntime import messages, pruntime_rpc_pb2
from poolkeeper.pruntime._wire import FieldSpec, ProtoMessage, WireError
from poolkeeper_devnet.pruntime import _proto

ALL_MESSAGES: list[type[ProtoMessage]] = [
    getattr(messages, name)
    for name in messages.__all__
    if isinstance(getattr(messages, name), type)
    and issubclass(getattr(messages, name), ProtoMessage)
]

_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "string": st.text(max_size=40),
    "bytes": st.binary(max_size=80),
}


def strategy_for(cls: type[ProtoMessage]) -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec: FieldSpec = field.metadata["pb"]
        if spec.kind == "message":
            assert spec.message is not None
            base = strategy_for(spec.message)
        else:
            base = _SCALARS[spec.kind]
        if spec.repeated:
            fields[field.name] = st.lists(base, max_size=4).map(tuple)
        elif spec.optional or spec.kind == "message":
            fields[field.name] = st.none() | base
        else:
            fields[field.name] = base
    return st.builds(cls, **fields)


def test_every_message_is_covered() -> None:
    assert {cls.__name__ for cls in ALL_MESSAGES} == set(_proto.MESSAGES)


_KIND_OF_TYPE = {
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_MESSAGE: "message",
}


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_dataclass_fields_are_the_generated_descriptor(cls: type[ProtoMessage]) -> None:
    descriptor = getattr(pruntime_rpc_pb2, cls.__name__).DESCRIPTOR
    declared = {
        field.name: (spec.number, spec.kind, spec.repeated, spec.optional)
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        for spec in [field.metadata["pb"]]
    }
    generated = {
        field.name: (
            field.number,
            _KIND_OF_TYPE[field.type],
            field.is_repeated,
            field.has_presence and field.type != FieldDescriptor.TYPE_MESSAGE,
        )
        for field in descriptor.fields
    }
    assert declared == generated


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_round_trip_and_wire_compatibility(cls: type[ProtoMessage]) -> None:
    @settings(max_examples=60, deadline=None)
    @given(strategy_for(cls))
    def check(value: ProtoMessage) -> None:
        encoded = value.encode()
        assert cls.decode(encoded) == value
        reference = _proto.MESSAGES[cls.__name__]()
        reference.ParseFromString(encoded)
        assert reference.SerializeToString() == encoded
        assert cls.decode(reference.SerializeToString()) == value

    check()


def test_unknown_fields_are_skipped() -> None:
    reference = _proto.new("PhactoryInfo", headernum=7, blocknum=3)
    extra = b"\xa8\x1f\x05" + b"\xb2\x1f\x02hi" + b"\xbd\x1f\x01\x02\x03\x04"  # 501, 502, 503
    info = messages.PhactoryInfo.decode(reference.SerializeToString() + extra)
    assert (info.headernum, info.blocknum) == (7, 3)


@pytest.mark.parametrize(
    "data",
    [b"\x08", b"\x0a\x05ab", b"\x52\x02\xff\xfe", b"\x00\x01", b"\x0b"],
    ids=["truncated-varint", "truncated-bytes", "bad-utf8", "field-zero", "group"],
)
def test_malformed_input_raises_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        messages.PhactoryInfo.decode(data)


def test_phactory_info_from_serde_json() -> None:
    reference = _proto.new("PhactoryInfo", initialized=True, headernum=9, public_key="ab", score=5)
    reference.system.registered = True
    info = messages.PhactoryInfo.from_json(_proto.to_serde_json(reference))
    assert info == messages.PhactoryInfo.decode(reference.SerializeToString())
    assert info.system is not None and info.system.registered
    assert info.genesis_block_hash is None
