"""A small reader of V14 metadata into plain dicts, without scalecodec.

scalecodec needs over a second to decode even a small metadata (it builds a class per
type), which would dominate the chain's start-up. The engine needs only the plain
structure (types, pallets, storage entries, constants, extrinsic format) to start and to
encode storage; scalecodec is loaded in the background for decoding calls. The output
mirrors scalecodec's decoded value shape, so both can be used interchangeably.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from poolkeeper_devnet.chain._typereg import PRIMITIVES as _PRIMITIVES
from poolkeeper_devnet.codec import Reader, ScaleError

T = TypeVar("T")

_HASHERS = (
    "Blake2_128",
    "Blake2_256",
    "Blake2_128Concat",
    "Twox128",
    "Twox256",
    "Twox64Concat",
    "Identity",
)


class _Reader(Reader):
    """The devnet's ``Reader`` with the metadata parser's zero-argument item callbacks."""

    __slots__ = ()

    def byte(self) -> int:
        return self.u8()

    def text(self) -> str:
        return self.bytes_().decode()

    def each(self, item: Callable[[], T]) -> list[T]:
        return self.vec(lambda _: item())

    def maybe(self, item: Callable[[], T]) -> T | None:
        return self.option(lambda _: item())


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
            "name": r.maybe(r.text),
            "type": r.compact(),
            "typeName": r.maybe(r.text),
            "docs": r.each(r.text),
        }

    def type_def() -> dict[str, Any]:
        kind = r.byte()
        if kind == 0:
            return {"composite": {"fields": r.each(field)}}
        if kind == 1:

            def variant() -> dict[str, Any]:
                return {
                    "name": r.text(),
                    "fields": r.each(field),
                    "index": r.byte(),
                    "docs": r.each(r.text),
                }

            return {"variant": {"variants": r.each(variant)}}
        if kind == 2:
            return {"sequence": {"type": r.compact()}}
        if kind == 3:
            length = r.u32()
            return {"array": {"len": length, "type": r.compact()}}
        if kind == 4:
            return {"tuple": r.each(r.compact)}
        if kind == 5:
            return {"primitive": _PRIMITIVES[r.byte()]}
        if kind == 6:
            return {"compact": {"type": r.compact()}}
        if kind == 7:
            return {"bitsequence": {"bit_store_type": r.compact(), "bit_order_type": r.compact()}}
        raise ScaleError(f"metadata: unknown type kind {kind}")

    def param() -> dict[str, Any]:
        return {"name": r.text(), "type": r.maybe(r.compact)}

    def portable_type() -> tuple[int, dict[str, Any]]:
        type_id = r.compact()
        return type_id, {
            "path": r.each(r.text),
            "params": r.each(param),
            "def": type_def(),
            "docs": r.each(r.text),
        }

    types = dict(r.each(portable_type))

    def storage_entry() -> dict[str, Any]:
        name = r.text()
        modifier = "Optional" if r.byte() == 0 else "Default"
        kind = r.byte()
        entry_type: dict[str, Any]
        if kind == 0:
            entry_type = {"Plain": r.compact()}
        else:
            hashers = r.each(lambda: _HASHERS[r.byte()])
            entry_type = {"Map": {"hashers": hashers, "key": r.compact(), "value": r.compact()}}
        default = r.bytes_()
        docs = r.each(r.text)
        return {
            "name": name,
            "modifier": modifier,
            "type": entry_type,
            "default": "0x" + default.hex(),
            "documentation": docs,
        }

    def storage() -> dict[str, Any]:
        return {"prefix": r.text(), "entries": r.each(storage_entry)}

    def type_ref() -> dict[str, Any]:
        return {"ty": r.compact()}

    def constant() -> dict[str, Any]:
        return {
            "name": r.text(),
            "type": r.compact(),
            "value": "0x" + r.bytes_().hex(),
            "docs": r.each(r.text),
        }

    def pallet() -> dict[str, Any]:
        return {
            "name": r.text(),
            "storage": r.maybe(storage),
            "calls": r.maybe(type_ref),
            "event": r.maybe(type_ref),
            "constants": r.each(constant),
            "error": r.maybe(type_ref),
            "index": r.byte(),
        }

    pallets = r.each(pallet)

    def signed_extension() -> dict[str, Any]:
        return {"identifier": r.text(), "ty": r.compact(), "additional_signed": r.compact()}

    extrinsic = {
        "ty": r.compact(),
        "version": r.byte(),
        "signed_extensions": r.each(signed_extension),
    }
    return {"types": types, "pallets": pallets, "extrinsic": extrinsic}
