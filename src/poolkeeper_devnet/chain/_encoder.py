"""A fast SCALE encoder driven by the metadata's portable type registry.

Block production and genesis encode every changed storage value; scalecodec's generic
objects cost ~100 µs per value, which makes a 10,000-worker genesis take many seconds.
This encoder compiles one small closure per type id and accepts the same "value shape"
scalecodec produces when decoding (hex strings for byte arrays and accounts, bare inner
values for one-field newtypes, ``"Variant"`` / ``{"Variant": value}`` for enums, None for
``Option::None``). Anything it does not understand raises ``Unsupported``, and the caller
falls back to scalecodec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scalecodec.utils.ss58 import ss58_decode

from poolkeeper_devnet.codec import encode_compact

Encoder = Callable[[Any], bytes]

_INT_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}
_SINT_SIZES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "i128": 16, "i256": 32}


class Unsupported(ValueError):
    """A value or type this encoder does not handle (fall back to scalecodec)."""


def _to_bytes(value: Any, length: int | None = None) -> bytes:
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str) and value.startswith("0x"):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError as exc:
            raise Unsupported(f"bad hex {value!r}") from exc
    elif isinstance(value, str) and length == 32:
        try:
            raw = bytes.fromhex(ss58_decode(value))
        except ValueError as exc:
            raise Unsupported(f"not an account {value!r}") from exc
    elif isinstance(value, str) and length is None:
        raw = value.encode()
    elif isinstance(value, list | tuple) and all(isinstance(b, int) for b in value):
        raw = bytes(value)
    else:
        raise Unsupported(f"not bytes: {value!r}")
    if length is not None and len(raw) != length:
        raise Unsupported(f"expected {length} bytes, got {len(raw)}")
    return raw


class RegistryEncoder:
    """Encoders compiled per type id of one portable registry."""

    def __init__(self, types: Mapping[int, Mapping[str, Any]]) -> None:
        self.types = types
        self._cache: dict[int, Encoder] = {}

    def encode(self, type_id: int, value: Any) -> bytes:
        return self.encoder(type_id)(value)

    def encoder(self, type_id: int) -> Encoder:
        cached = self._cache.get(type_id)
        if cached is None:

            def recursive(value: Any) -> bytes:  # a type that contains itself
                return self._cache[type_id](value)

            self._cache[type_id] = recursive
            cached = self._compile(type_id)
            self._cache[type_id] = cached
        return cached

    def _is_u8(self, type_id: int) -> bool:
        return bool(self.types[type_id]["def"].get("primitive") == "u8")

    def _compile(self, type_id: int) -> Encoder:
        definition = self.types[type_id]["def"]
        path = self.types[type_id].get("path") or []
        if "primitive" in definition:
            return self._primitive(definition["primitive"])
        if "compact" in definition:

            def compact(value: Any) -> bytes:
                if isinstance(value, bool) or not isinstance(value, int):
                    if isinstance(value, dict) and len(value) == 1:
                        value = next(iter(value.values()))
                    if not isinstance(value, int):
                        raise Unsupported(f"not an int: {value!r}")
                return encode_compact(value)

            return compact
        if "sequence" in definition:
            inner_id = definition["sequence"]["type"]
            if self._is_u8(inner_id):
                return lambda value: encode_compact(len(raw := _to_bytes(value))) + raw
            inner = self.encoder(inner_id)

            def sequence(value: Any) -> bytes:
                if isinstance(value, Mapping):
                    value = list(value.items())
                if not isinstance(value, list | tuple):
                    raise Unsupported(f"not a list: {value!r}")
                return encode_compact(len(value)) + b"".join(inner(v) for v in value)

            return sequence
        if "array" in definition:
            length = definition["array"]["len"]
            inner_id = definition["array"]["type"]
            if self._is_u8(inner_id):
                return lambda value: _to_bytes(value, length)
            inner = self.encoder(inner_id)

            def array(value: Any) -> bytes:
                if not isinstance(value, list | tuple) or len(value) != length:
                    raise Unsupported(f"not a list of {length}: {value!r}")
                return b"".join(inner(v) for v in value)

            return array
        if "tuple" in definition:
            members = [self.encoder(t) for t in definition["tuple"]]
            if not members:
                return lambda value: b""

            def tuple_(value: Any) -> bytes:
                if len(members) == 1 and not isinstance(value, list | tuple):
                    value = [value]
                if not isinstance(value, list | tuple) or len(value) != len(members):
                    raise Unsupported(f"not a {len(members)}-tuple: {value!r}")
                return b"".join(m(v) for m, v in zip(members, value, strict=True))

            return tuple_
        if "composite" in definition:
            return self._composite(definition["composite"]["fields"], path)
        if "variant" in definition:
            return self._variant(definition["variant"]["variants"], path)
        raise Unsupported(f"type {type_id}: {list(definition)}")

    def _primitive(self, kind: str) -> Encoder:
        if kind in _INT_SIZES:
            size = _INT_SIZES[kind]

            def unsigned(value: Any) -> bytes:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise Unsupported(f"not an int: {value!r}")
                try:
                    return value.to_bytes(size, "little")
                except OverflowError as exc:
                    raise Unsupported(f"{value} does not fit {kind}") from exc

            return unsigned
        if kind in _SINT_SIZES:
            size = _SINT_SIZES[kind]

            def signed(value: Any) -> bytes:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise Unsupported(f"not an int: {value!r}")
                return value.to_bytes(size, "little", signed=True)

            return signed
        if kind == "bool":

            def boolean(value: Any) -> bytes:
                if not isinstance(value, bool):
                    raise Unsupported(f"not a bool: {value!r}")
                return b"\x01" if value else b"\x00"

            return boolean
        if kind == "str":
            return lambda value: encode_compact(len(raw := str(value).encode())) + raw
        raise Unsupported(f"primitive {kind}")

    def _composite(self, fields: list[Mapping[str, Any]], path: list[str]) -> Encoder:
        if not fields:
            return lambda value: b""
        if len(fields) == 1 and fields[0].get("name") is None:
            inner = self.encoder(fields[0]["type"])
            return inner
        if all(f.get("name") is None for f in fields):
            members = [self.encoder(f["type"]) for f in fields]

            def tuple_struct(value: Any) -> bytes:
                if not isinstance(value, list | tuple) or len(value) != len(members):
                    raise Unsupported(f"not a {len(members)}-tuple: {value!r}")
                return b"".join(m(v) for m, v in zip(members, value, strict=True))

            return tuple_struct
        named = [(str(f["name"]), self.encoder(f["type"])) for f in fields]

        def struct(value: Any) -> bytes:
            if not isinstance(value, Mapping):
                raise Unsupported(f"not a struct: {value!r}")
            try:
                return b"".join(encode(value[name]) for name, encode in named)
            except KeyError as exc:
                raise Unsupported(f"missing field {exc}") from exc

        return struct

    def _variant(self, variants: list[Mapping[str, Any]], path: list[str]) -> Encoder:
        if path == ["Option"]:
            some = next(v for v in variants if v["name"] == "Some")
            inner = self.encoder(some["fields"][0]["type"])

            def option(value: Any) -> bytes:
                if value is None:
                    return b"\x00"
                if isinstance(value, Mapping) and set(value) == {"Some"}:
                    value = value["Some"]
                return b"\x01" + inner(value)

            return option
        table: dict[str, tuple[int, Encoder]] = {}
        for variant in variants:
            table[variant["name"]] = (variant["index"], self._composite(variant["fields"], []))
        is_multi_address = path[-1:] == ["MultiAddress"]

        def enum(value: Any) -> bytes:
            if isinstance(value, str):
                if value in table:
                    return bytes([table[value][0]])
                if is_multi_address:
                    index, encode = table["Id"]
                    return bytes([index]) + encode(value)
                raise Unsupported(f"unknown variant {value!r}")
            if isinstance(value, Mapping) and len(value) == 1:
                name, inner = next(iter(value.items()))
                if name not in table:
                    raise Unsupported(f"unknown variant {name!r}")
                index, encode = table[name]
                return bytes([index]) + encode(inner)
            raise Unsupported(f"not an enum value: {value!r}")

        return enum
