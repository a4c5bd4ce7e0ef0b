"""A small reader of V14 metadata into plain dicts, without scalecodec.

scalecodec needs over a second to decode even a small metadata (it builds a class per
type), which would dominate the chain's start-up. The engine needs only the plain
structure (types, pallets, storage entries, constants, extrinsic format) to start and to
encode storage; scalecodec is loaded in the background for decoding calls. The output
mirrors scalecodec's decoded value shape, so both can be used interchangeably.
"""

from __future__ import annotations

from typing import Any

from poolkeeper_devnet.chain._codec import ScaleError, decode_compact
from poolkeeper_devnet.chain._typereg import PRIMITIVES as _PRIMITIVES

_HASHERS = (
    "Blake2_128",
    "Blake2_256",
    "Blake2_128Concat",
    "Twox128",
    "Twox256",
    "Twox64Concat",
    "Identity",
)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def byte(self) -> int:
        if self.offset >= len(self.data):
            raise ScaleError("metadata: out of data")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def take(self, length: int) -> bytes:
        end = self.offset + length
        if end > len(self.data):
            raise ScaleError("metadata: out of data")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def compact(self) -> int:
        value, self.offset = decode_compact(self.data, self.offset)
        return value

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def bytes_(self) -> bytes:
        return self.take(self.compact())

    def text(self) -> str:
        return self.bytes_().decode()

    def vec(self, item: Any) -> list[Any]:
        return [item() for _ in range(self.compact())]

    def option(self, item: Any) -> Any:
        return item() if self.byte() else None


def parse_v14(metadata: bytes) -> dict[str, Any]:
    """``{"types": {id: type}, "pallets": [...], "extrinsic": {...}}`` of V14 metadata."""
    r = _Reader(metadata)
    if r.take(4) != b"meta":
        raise ScaleError("metadata: missing magic")
    version = r.byte()
    if version != 14:
        raise ScaleError(f"metadata: version {version} is not V14")

    def field() -> dict[str, Any]:
        return {
            "name": r.option(r.text),
            "type": r.compact(),
            "typeName": r.option(r.text),
            "docs": r.vec(r.text),
        }

    def type_def() -> dict[str, Any]:
        kind = r.byte()
        if kind == 0:
            return {"composite": {"fields": r.vec(field)}}
        if kind == 1:

            def variant() -> dict[str, Any]:
                return {
                    "name": r.text(),
                    "fields": r.vec(field),
                    "index": r.byte(),
                    "docs": r.vec(r.text),
                }

            return {"variant": {"variants": r.vec(variant)}}
        if kind == 2:
            return {"sequence": {"type": r.compact()}}
        if kind == 3:
            length = r.u32()
            return {"array": {"len": length, "type": r.compact()}}
        if kind == 4:
            return {"tuple": r.vec(r.compact)}
        if kind == 5:
            return {"primitive": _PRIMITIVES[r.byte()]}
        if kind == 6:
            return {"compact": {"type": r.compact()}}
        if kind == 7:
            return {"bitsequence": {"bit_store_type": r.compact(), "bit_order_type": r.compact()}}
        raise ScaleError(f"metadata: unknown type kind {kind}")

    def param() -> dict[str, Any]:
        return {"name": r.text(), "type": r.option(r.compact)}

    def portable_type() -> tuple[int, dict[str, Any]]:
        type_id = r.compact()
        return type_id, {
            "path": r.vec(r.text),
            "params": r.vec(param),
            "def": type_def(),
            "docs": r.vec(r.text),
        }

    types = dict(r.vec(portable_type))

    def storage_entry() -> dict[str, Any]:
        name = r.text()
        modifier = "Optional" if r.byte() == 0 else "Default"
        kind = r.byte()
        entry_type: dict[str, Any]
        if kind == 0:
            entry_type = {"Plain": r.compact()}
        else:
            hashers = r.vec(lambda: _HASHERS[r.byte()])
            entry_type = {"Map": {"hashers": hashers, "key": r.compact(), "value": r.compact()}}
        default = r.bytes_()
        docs = r.vec(r.text)
        return {
            "name": name,
            "modifier": modifier,
            "type": entry_type,
            "default": "0x" + default.hex(),
            "documentation": docs,
        }

    def storage() -> dict[str, Any]:
        return {"prefix": r.text(), "entries": r.vec(storage_entry)}

    def type_ref() -> dict[str, Any]:
        return {"ty": r.compact()}

    def constant() -> dict[str, Any]:
        return {
            "name": r.text(),
            "type": r.compact(),
            "value": "0x" + r.bytes_().hex(),
            "docs": r.vec(r.text),
        }

    def pallet() -> dict[str, Any]:
        return {
            "name": r.text(),
            "storage": r.option(storage),
            "calls": r.option(type_ref),
            "event": r.option(type_ref),
            "constants": r.vec(constant),
            "error": r.option(type_ref),
            "index": r.byte(),
        }

    pallets = r.vec(pallet)

    def signed_extension() -> dict[str, Any]:
        return {"identifier": r.text(), "ty": r.compact(), "additional_signed": r.compact()}

    extrinsic = {
        "ty": r.compact(),
        "version": r.byte(),
        "signed_extensions": r.vec(signed_extension),
    }
    return {"types": types, "pallets": pallets, "extrinsic": extrinsic}
