"""A small proto3 wire codec driven by dataclass field metadata.

pRuntime's API is protobuf, but compiling a .proto needs protoc and gives untyped
classes. The messages poolkeeper needs are few and flat, so each is a frozen
dataclass whose fields carry their protobuf number and scalar kind (see ``pb``);
``encode`` and ``decode`` walk that table. Only the proto3 features those messages
use are supported: varint scalars (bool, int32, uint32, uint64, enums), string,
bytes, nested messages, repeated string/bytes, and explicit-presence ``optional``.
Unknown fields are skipped on decode, as protobuf requires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self, TypeVar

Kind = Literal["bool", "int32", "uint32", "uint64", "string", "bytes", "message"]

_VARINT_KINDS = frozenset({"bool", "int32", "uint32", "uint64"})
_WT_VARINT = 0
_WT_I64 = 1
_WT_LEN = 2
_WT_I32 = 5
_U64_MASK = (1 << 64) - 1


class WireError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where a dataclass field lives on the wire."""

    number: int
    kind: Kind
    repeated: bool = False
    optional: bool = False
    message: type[ProtoMessage] | None = None


def pb(
    number: int,
    kind: Kind,
    *,
    default: Any = dataclasses.MISSING,
    repeated: bool = False,
    optional: bool = False,
    message: type[ProtoMessage] | None = None,
) -> Any:
    """Declare a dataclass field as protobuf field ``number`` of ``kind``."""
    spec = FieldSpec(number, kind, repeated, optional, message)
    if repeated:
        return dataclasses.field(default_factory=tuple, metadata={"pb": spec})
    if default is dataclasses.MISSING:
        default = None if optional or kind == "message" else _ZERO[kind]
    return dataclasses.field(default=default, metadata={"pb": spec})


_ZERO: dict[str, Any] = {
    "bool": False,
    "int32": 0,
    "uint32": 0,
    "uint64": 0,
    "string": "",
    "bytes": b"",
}


def encode_varint(value: int, out: bytearray) -> None:
    """Append ``value`` (taken modulo 2**64, as protobuf does for negatives) as a varint."""
    value &= _U64_MASK
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a varint at ``pos``; return (value, next position)."""
    if pos < len(data) and data[pos] < 0x80:  # most keys and small values: one byte
        return data[pos], pos + 1
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64_MASK, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint too long")


M = TypeVar("M", bound="ProtoMessage")


class ProtoMessage:
    """Base of the dataclass messages; subclasses must be dataclasses using ``pb``."""

    _specs: ClassVar[tuple[tuple[str, FieldSpec], ...]] = ()
    _by_number: ClassVar[dict[int, tuple[str, FieldSpec]]] = {}

    @classmethod
    def _table(cls) -> tuple[tuple[str, FieldSpec], ...]:
        if "_specs" not in cls.__dict__:
            specs = tuple(
                (f.name, f.metadata["pb"])
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if "pb" in f.metadata
            )
            cls._specs = specs
            cls._by_number = {spec.number: (name, spec) for name, spec in specs}
        return cls._specs

    def encode(self) -> bytes:
        """Serialize to the protobuf binary format (fields in number order)."""
        out = bytearray()
        for name, spec in sorted(self._table(), key=lambda item: item[1].number):
            value = getattr(self, name)
            if spec.repeated:
                for item in value:
                    _encode_one(spec, item, out)
            elif value is None:
                continue
            elif spec.optional or spec.kind == "message" or value != _ZERO[spec.kind]:
                _encode_one(spec, value, out)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Self:
        """Parse the protobuf binary format; raise ``WireError`` on malformed input."""
        cls._table()
        by_number = cls._by_number
        values: dict[str, Any] = {}
        pos = 0
        end = len(data)
        while pos < end:
            key, pos = decode_varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if number == 0:
                raise WireError("field number 0")
            entry = by_number.get(number)
            if entry is None:
                pos = _skip(data, pos, wire_type)
                continue
            name, spec = entry
            value, pos = _decode_one(spec, wire_type, data, pos)
            if spec.repeated:
                values.setdefault(name, []).append(value)
            elif spec.kind == "message" and name in values:
                values[name] = _merge(values[name], value)
            else:
                values[name] = value
        for name, spec in cls._specs:
            if spec.repeated and name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def _merge(old: ProtoMessage, new: ProtoMessage) -> ProtoMessage:
    # protobuf merges repeated occurrences of a singular message field field-by-field
    changes = {
        f.name: getattr(new, f.name)
        for f in dataclasses.fields(new)  # type: ignore[arg-type]
        if getattr(new, f.name) != f.default and getattr(new, f.name) is not None
    }
    return dataclasses.replace(old, **changes)  # type: ignore[type-var]


def _encode_one(spec: FieldSpec, value: Any, out: bytearray) -> None:
    if spec.kind in _VARINT_KINDS:
        encode_varint(spec.number << 3 | _WT_VARINT, out)
        encode_varint(int(value), out)
        return
    if spec.kind == "string":
        payload: bytes = value.encode("utf-8")
    elif spec.kind == "bytes":
        payload = bytes(value)
    else:
        payload = value.encode()
    encode_varint(spec.number << 3 | _WT_LEN, out)
    encode_varint(len(payload), out)
    out += payload


def _decode_one(
    spec: FieldSpec, wire_type: int, data: bytes | memoryview, pos: int
) -> tuple[Any, int]:
    if spec.kind in _VARINT_KINDS:
        if wire_type != _WT_VARINT:
            raise WireError(f"field {spec.number}: expected varint, got wire type {wire_type}")
        raw, pos = decode_varint(data, pos)
        return _VARINT_CONVERT[spec.kind](raw), pos
    if wire_type != _WT_LEN:
        raise WireError(f"field {spec.number}: expected length-delimited, got {wire_type}")
    length, pos = decode_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise WireError(f"field {spec.number}: truncated")
    chunk = data[pos:end]
    if spec.kind == "bytes":
        return bytes(chunk), end
    if spec.kind == "string":
        try:
            return bytes(chunk).decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise WireError(f"field {spec.number}: invalid UTF-8") from exc
    assert spec.message is not None
    return spec.message.decode(chunk), end


def _to_int32(raw: int) -> int:
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw >= 1 << 31 else raw


_VARINT_CONVERT: dict[str, Callable[[int], Any]] = {
    "bool": bool,
    "int32": _to_int32,
    "uint32": lambda raw: raw & 0xFFFFFFFF,
    "uint64": lambda raw: raw,
}


def _skip(data: bytes | memoryview, pos: int, wire_type: int) -> int:
    if wire_type == _WT_VARINT:
        return decode_varint(data, pos)[1]
    if wire_type == _WT_I64:
        pos += 8
    elif wire_type == _WT_I32:
        pos += 4
    elif wire_type == _WT_LEN:
        length, pos = decode_varint(data, pos)
        pos += length
    else:
        raise WireError(f"unsupported wire type {wire_type}")
    if pos > len(data):
        raise WireError("truncated field")
    return pos
