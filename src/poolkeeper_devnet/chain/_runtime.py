"""Everything the engine needs from the served metadata, looked up by name.

The simulator serves one V14 metadata (its own, or a real runtime's in tests) and
encodes storage, events and errors with it, and decodes calls with it, so that a client
resolving indices and types from the same metadata sees consistent data. Nothing here
hard-codes a pallet index or a type id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes, ScaleDecoder
from scalecodec.type_registry import load_type_registry_preset
from scalecodec.types import Tuple

from poolkeeper_devnet.chain._encoder import RegistryEncoder, Unsupported
from poolkeeper_devnet.chain._v14 import parse_v14
from poolkeeper_devnet.codec import HASHERS, ScaleError, storage_prefix


@dataclass(frozen=True)
class StorageEntry:
    pallet: str
    item: str
    prefix: bytes
    hashers: tuple[str, ...]
    key_types: tuple[int, ...]
    value_type: int
    default: bytes
    optional: bool


@dataclass(frozen=True)
class Variant:
    index: int
    name: str
    fields: tuple[tuple[str | None, int], ...]


@dataclass(frozen=True)
class SignedExtension:
    identifier: str
    extra_type: int
    additional_type: int


class UnknownName(LookupError):
    """A pallet, call, storage item, event or error the served metadata does not have."""


class Runtime:
    """The served metadata, decoded once, with name-indexed lookups and a codec."""

    def __init__(self, metadata_bytes: bytes, background: bool = True) -> None:
        """``background``: leave the scalecodec decode for later (``preload`` or first use)."""
        self.metadata_bytes = metadata_bytes
        v14 = parse_v14(metadata_bytes)
        self.types: dict[int, dict[str, Any]] = v14["types"]
        self._scale_lock = threading.Lock()
        self._scale_error: BaseException | None = None
        self._config: RuntimeConfigurationObject | None = None
        self._metadata: Any = None
        if not background:
            self.load_scalecodec()
        self.pallet_index: dict[str, int] = {}
        self.pallet_name: dict[int, str] = {}
        self._storage: dict[tuple[str, str], StorageEntry] = {}
        self._calls: dict[str, dict[str, Variant]] = {}
        self._events: dict[str, dict[str, Variant]] = {}
        self._errors: dict[str, dict[str, Variant]] = {}
        self._constants: dict[tuple[str, str], tuple[int, bytes]] = {}
        for pallet in v14["pallets"]:
            name = pallet["name"]
            self.pallet_index[name] = pallet["index"]
            self.pallet_name[pallet["index"]] = name
            for kind, table in (
                ("calls", self._calls),
                ("event", self._events),
                ("error", self._errors),
            ):
                if pallet.get(kind):
                    table[name] = {v.name: v for v in self._variants(pallet[kind]["ty"])}
            for constant in pallet.get("constants") or []:
                self._constants[(name, constant["name"])] = (
                    constant["type"],
                    _constant_bytes(constant["value"]),
                )
            storage = pallet.get("storage") or {}
            for entry in storage.get("entries", []):
                self._storage[(name, entry["name"])] = self._storage_entry(storage["prefix"], entry)
        extrinsic = v14["extrinsic"]
        self.signed_extensions = tuple(
            SignedExtension(e["identifier"], e["ty"], e["additional_signed"])
            for e in extrinsic["signed_extensions"]
        )
        params = {p["name"]: p["type"] for p in self.types[extrinsic["ty"]]["params"]}
        self.address_type: int = params["Address"]
        self.signature_type: int = params["Signature"]
        self.dispatch_error_type = self._find_type(["sp_runtime", "DispatchError"])
        self._decoder_cache: dict[int, type[ScaleDecoder]] = {}
        self.fast = RegistryEncoder(self.types)

    def load_scalecodec(self) -> None:
        """Decode the metadata with scalecodec (slow, ~1 s): needed to decode calls.

        Done on first use, or ahead of it from a background thread (``preload``)."""
        with self._scale_lock:
            if self._config is not None or self._scale_error is not None:
                return
            # scalecodec's class registry is process-global and not thread-safe: a decode
            # racing another thread's (e.g. an in-process client's) can fail spuriously.
            for attempt in range(3):
                try:
                    config = RuntimeConfigurationObject()
                    config.update_type_registry(load_type_registry_preset("core"))
                    metadata = config.create_scale_object(
                        "MetadataVersioned", data=ScaleBytes(self.metadata_bytes)
                    )
                    metadata.decode()
                    config.add_portable_registry(metadata)
                    self._metadata, self._config = metadata, config
                    return
                except Exception as exc:  # surfaced to every user of the codec
                    if attempt == 2:
                        self._scale_error = exc

    def preload(self, delay: float = 0.0) -> None:
        """Start ``load_scalecodec`` in a background thread after ``delay`` seconds."""
        timer = threading.Timer(delay, self.load_scalecodec)
        timer.daemon = True
        timer.start()

    def _wait_scalecodec(self) -> None:
        self.load_scalecodec()
        if self._scale_error is not None:
            raise RuntimeError(
                "scalecodec cannot decode the served metadata"
            ) from self._scale_error

    @property
    def config(self) -> RuntimeConfigurationObject:
        self._wait_scalecodec()
        assert self._config is not None
        return self._config

    @property
    def metadata(self) -> Any:
        self._wait_scalecodec()
        return self._metadata

    # ---- lookups -------------------------------------------------------------------
    def _variants(self, type_id: int) -> list[Variant]:
        definition = self.types[type_id]["def"]
        if "variant" not in definition:
            return []
        return [
            Variant(
                v["index"],
                v["name"],
                tuple((f.get("name"), f["type"]) for f in v["fields"]),
            )
            for v in definition["variant"]["variants"]
        ]

    def variants(self, type_id: int) -> list[Variant]:
        return self._variants(type_id)

    def _find_type(self, path: list[str]) -> int:
        for type_id, definition in self.types.items():
            if definition.get("path") == path:
                return type_id
        raise UnknownName(".".join(path))

    def _storage_entry(self, prefix: str, entry: dict[str, Any]) -> StorageEntry:
        kind = entry["type"]
        if "Plain" in kind:
            hashers: tuple[str, ...] = ()
            key_types: tuple[int, ...] = ()
            value_type = kind["Plain"]
        else:
            mapping = kind["Map"]
            hashers = tuple(mapping["hashers"])
            value_type = mapping["value"]
            key_def = self.types[mapping["key"]]["def"]
            if len(hashers) > 1 and "tuple" in key_def:
                key_types = tuple(key_def["tuple"])
            else:
                key_types = (mapping["key"],)
        return StorageEntry(
            pallet=prefix,
            item=entry["name"],
            prefix=storage_prefix(prefix, entry["name"]),
            hashers=hashers,
            key_types=key_types,
            value_type=value_type,
            default=_constant_bytes(entry["default"]),
            optional=entry["modifier"] == "Optional",
        )

    def has_pallet(self, pallet: str) -> bool:
        return pallet in self.pallet_index

    def storage(self, pallet: str, item: str) -> StorageEntry:
        try:
            return self._storage[(pallet, item)]
        except KeyError:
            raise UnknownName(f"storage {pallet}.{item}") from None

    def has_storage(self, pallet: str, item: str) -> bool:
        return (pallet, item) in self._storage

    def call(self, pallet: str, call: str) -> Variant:
        try:
            return self._calls[pallet][call]
        except KeyError:
            raise UnknownName(f"call {pallet}.{call}") from None

    def event(self, pallet: str, event: str) -> Variant:
        try:
            return self._events[pallet][event]
        except KeyError:
            raise UnknownName(f"event {pallet}.{event}") from None

    def error(self, pallet: str, error: str) -> Variant:
        try:
            return self._errors[pallet][error]
        except KeyError:
            raise UnknownName(f"error {pallet}.{error}") from None

    def has_error(self, pallet: str, error: str) -> bool:
        return error in self._errors.get(pallet, {})

    def constant(self, pallet: str, name: str) -> Any:
        try:
            type_id, raw = self._constants[(pallet, name)]
        except KeyError:
            raise UnknownName(f"constant {pallet}.{name}") from None
        primitive = self.types[type_id]["def"].get("primitive", "")
        if primitive.startswith("u") and len(raw) * 8 == int(primitive[1:]):
            return int.from_bytes(raw, "little")
        return self.decode(type_id, raw)

    # ---- codec ---------------------------------------------------------------------
    def _object(self, type_id: int, data: bytes | None = None) -> ScaleDecoder:
        decoder = self._decoder_cache.get(type_id)
        if decoder is None:
            decoder = self.config.get_decoder_class(f"scale_info::{type_id}")
            if decoder is None:
                raise UnknownName(f"type {type_id}")
            self._decoder_cache[type_id] = decoder
        return decoder(
            data=ScaleBytes(data) if data is not None else None,
            runtime_config=self.config,
            metadata=self.metadata,
        )

    def encode(self, type_id: int, value: Any) -> bytes:
        try:
            return self.fast.encode(type_id, value)
        except (Unsupported, KeyError, TypeError, ValueError, StopIteration):
            pass
        try:
            return bytes(self._object(type_id).encode(value).data)
        except Exception:  # scalecodec raises many exception types
            pass
        try:
            return bytes(self._object(type_id).encode(self._shape(type_id, value)).data)
        except Exception as exc:
            raise ScaleError(f"cannot encode {value!r} as type {type_id}: {exc}") from exc

    def _shape(self, type_id: int, value: Any) -> Any:
        """Turn a decoded value into what scalecodec's encoder wants.

        scalecodec decodes a composite with one unnamed field (``BoundedVec``, newtypes)
        to the bare inner value but encodes it only from a one-element list.
        """
        definition = self.types[type_id]["def"]
        if "composite" in definition:
            fields = definition["composite"]["fields"]
            if len(fields) == 1 and fields[0].get("name") is None:
                inner = self._shape(fields[0]["type"], value)
                decoder = self.config.get_decoder_class(f"scale_info::{type_id}")
                is_tuple = decoder is not None and issubclass(decoder, Tuple)
                return [inner] if is_tuple else inner
            if isinstance(value, dict):
                return {
                    f["name"]: self._shape(f["type"], value[f["name"]])
                    if f["name"] in value
                    else None
                    for f in fields
                }
            return value
        if "sequence" in definition or "array" in definition:
            inner_type = (definition.get("sequence") or definition.get("array"))["type"]
            if isinstance(value, list | tuple):
                return [self._shape(inner_type, v) for v in value]
            return value
        if "tuple" in definition and isinstance(value, list | tuple):
            return [self._shape(t, v) for t, v in zip(definition["tuple"], value, strict=False)]
        if "variant" in definition and isinstance(value, dict) and len(value) == 1:
            name, inner = next(iter(value.items()))
            variant = next((v for v in self.variants(type_id) if v.name == name), None)
            if variant is None or not variant.fields:
                return value
            if len(variant.fields) == 1 and variant.fields[0][0] is None:
                return {name: self._shape(variant.fields[0][1], inner)}
            if isinstance(inner, dict):
                return {
                    name: {
                        field: self._shape(t, inner.get(field))
                        for field, t in variant.fields
                        if field
                    }
                }
        return value

    def decode(self, type_id: int, data: bytes) -> Any:
        obj = self._object(type_id, data)
        try:
            return obj.decode(check_remaining=True)
        except Exception as exc:
            raise ScaleError(f"cannot decode type {type_id}: {exc}") from exc

    def decode_prefix(self, type_id: int, data: bytes, offset: int) -> tuple[Any, int]:
        """Decode one value starting at ``offset``; (value, offset after it)."""
        obj = self._object(type_id, data)
        obj.data.offset = offset
        try:
            value = obj.decode(check_remaining=False)
        except Exception as exc:
            raise ScaleError(f"cannot decode type {type_id}: {exc}") from exc
        return value, obj.data.offset

    def decode_call(self, data: bytes) -> dict[str, Any]:
        """A call's ``{call_module, call_function, call_args: [{name, value}], ...}``."""
        obj = self.config.create_scale_object("Call", data=ScaleBytes(data), metadata=self.metadata)
        try:
            value: dict[str, Any] = obj.decode(check_remaining=True)
        except Exception as exc:
            raise ScaleError(f"cannot decode call: {exc}") from exc
        return value

    def storage_key(self, entry: StorageEntry, keys: tuple[Any, ...]) -> bytes:
        if len(keys) != len(entry.hashers):
            raise ScaleError(
                f"{entry.pallet}.{entry.item} takes {len(entry.hashers)} keys, got {len(keys)}"
            )
        parts = [entry.prefix]
        for hasher, type_id, key in zip(entry.hashers, entry.key_types, keys, strict=True):
            parts.append(HASHERS[hasher](self.encode(type_id, key)))
        return b"".join(parts)

    def encode_event(
        self, pallet: str, event: str, values: tuple[Any, ...], attributes: dict[str, Any]
    ) -> bytes:
        variant = self.event(pallet, event)
        parts = [bytes([self.pallet_index[pallet], variant.index])]
        positional = list(values)
        for field_name, type_id in variant.fields:
            if field_name is not None and field_name in attributes:
                value = attributes[field_name]
            elif positional:
                value = positional.pop(0)
            else:
                raise ScaleError(f"event {pallet}.{event}: missing field {field_name}")
            parts.append(self.encode(type_id, value))
        return b"".join(parts)

    def module_error_value(self, pallet: str, error: str) -> dict[str, Any]:
        """A DispatchError value for a module error, shaped for this metadata's ModuleError."""
        variant = self.error(pallet, error)
        module = next(v for v in self.variants(self.dispatch_error_type) if v.name == "Module")
        module_type = self.types[module.fields[0][1]]["def"]["composite"]["fields"]
        error_field = next(f for f in module_type if f["name"] == "error")
        error_def = self.types[error_field["type"]]["def"]
        if "array" in error_def:
            size = error_def["array"]["len"]
            error_value: Any = "0x" + bytes([variant.index]).ljust(size, b"\0").hex()
        else:
            error_value = variant.index
        return {"Module": {"index": self.pallet_index[pallet], "error": error_value}}


def _constant_bytes(value: Any) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise ScaleError(f"unexpected constant value {value!r}")
