"""Storage values of one loaded metadata: hand-written decoders where the shapes match,
scalecodec for everything else.

The chain adapter reads raw ``state_queryStorageAt`` answers and decodes each value
here, so the few value types read for thousands of workers skip scalecodec's object
tree (see ``_fast_decode``), while every other item, and every item whose metadata type
differs from what the hand-written decoder reads, still goes through scalecodec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scalecodec.base import ScaleBytes

from poolkeeper.chain import _fast_decode as fast

_CONCAT_HASH_BYTES = {"Twox64Concat": 8, "Blake2_128Concat": 16, "Identity": 0}


def registry_types(metadata: Any) -> dict[int, Mapping[str, Any]]:
    """``{type id: type record}`` of a V14+ metadata's portable registry."""
    return {t["id"]: t["type"] for t in metadata.portable_registry.value["types"]}


def value_type_ids(metadata: Any) -> dict[tuple[str, str], int]:
    """``{(pallet, item): value type id}`` of every storage item in the metadata."""
    out: dict[tuple[str, str], int] = {}
    for pallet in metadata.pallets:
        storage = pallet.storage or []
        for item in storage:
            kind, body = next(iter(item.value["type"].items()))
            type_id = body["value"] if kind == "Map" else body
            if isinstance(type_id, int):
                out[(pallet.name, item.value["name"])] = type_id
    return out


class StorageValues:
    """Decodes raw storage values (and map-key suffixes) of one loaded metadata."""

    def __init__(self, metadata: Any, runtime_config: Any, ss58_format: int | None) -> None:
        self._metadata = metadata
        self._config = runtime_config
        self._types = registry_types(metadata)
        self._value_ids = value_type_ids(metadata)
        self._fast = fast.fast_items(self._types, self._value_ids)
        providers = None
        if ("PhalaRegistry", "Workers") in self._fast:
            providers = fast.fieldless_names(
                self._types,
                self._value_ids[("PhalaRegistry", "Workers")],
                ("attestation_provider", "Some"),
            )
        self._decoders = fast.Decoders(ss58_format, providers)
        self._defaults: dict[tuple[str, str], Any] = {}
        self._key_decoders: dict[tuple[str, str], tuple[int, fast.ValueDecoder | None, str]] = {}
        self.fallbacks = 0
        """Values decoded by scalecodec (a fast decoder did not apply or gave up)."""

    def account_bytes(self, address: str) -> bytes | None:
        """The account id of an SS58 address these decoders produced lately, if any."""
        return self._decoders.raw_accounts.get(address)

    def is_fast(self, pallet: str, item: str) -> bool:
        """Whether ``pallet.item`` values go through a hand-written decoder."""
        return (pallet, item) in self._fast

    def decode(self, pallet: str, item: str, raw: bytes | None) -> Any:
        """The value as scalecodec's ``.value`` gives it; an absent value is the item's
        default for ``ValueQuery`` items and None otherwise."""
        if raw is None:
            return self._default(pallet, item)
        decoder = self._fast.get((pallet, item))
        if decoder is not None:
            try:
                return decoder(self._decoders, raw)
            except fast.DECODE_ERRORS:
                pass
        self.fallbacks += 1
        return self._scalecodec(self._function(pallet, item).get_value_type_string(), raw)

    def key_param(self, pallet: str, item: str, key: bytes) -> Any:
        """The key parameter of a one-key map entry from its full storage key.

        Needs a transparent hasher (``Twox64Concat``, ``Blake2_128Concat``, ``Identity``)."""
        if (pallet, item) not in self._key_decoders:
            function = self._function(pallet, item)
            hashers = function.get_param_hashers()
            if len(hashers) != 1 or hashers[0] not in _CONCAT_HASH_BYTES:
                raise ValueError(
                    f"{pallet}.{item}: only one-key maps with a transparent hasher can be "
                    f"listed (hashers: {hashers})"
                )
            [hasher] = hashers
            key_id = int(function.value["type"]["Map"]["key"])
            decoder = next(
                (
                    d
                    for shape, d in fast.KEY_SHAPES.items()
                    if fast.type_matches(self._types, key_id, shape)
                ),
                None,
            )
            [type_string] = function.get_params_type_string()
            self._key_decoders[(pallet, item)] = (
                32 + _CONCAT_HASH_BYTES[hasher],
                decoder,
                type_string,
            )
        offset, decoder, type_string = self._key_decoders[(pallet, item)]
        raw = key[offset:]
        if decoder is not None:
            try:
                return decoder(self._decoders, raw)
            except fast.DECODE_ERRORS:
                pass
        return self._scalecodec(type_string, raw)

    def _default(self, pallet: str, item: str) -> Any:
        if (pallet, item) not in self._defaults:
            function = self._function(pallet, item)
            value = None
            if function.value["modifier"] == "Default":
                default = bytes(function.value_object["default"].value_object)
                value = self._scalecodec(function.get_value_type_string(), default)
            self._defaults[(pallet, item)] = value
        return self._defaults[(pallet, item)]

    def _function(self, pallet: str, item: str) -> Any:
        return self._metadata.get_metadata_pallet(pallet).get_storage_function(item)

    def _scalecodec(self, type_string: str, raw: bytes) -> Any:
        obj = self._config.create_scale_object(
            type_string=type_string, data=ScaleBytes(bytearray(raw)), metadata=self._metadata
        )
        return obj.decode()
