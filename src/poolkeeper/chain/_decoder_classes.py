"""scalecodec's decoder classes, made once per type string instead of once per use.

Why: scalecodec builds a new class every time it meets a composite type string that its
registry does not hold (``Compact<u32>``, ``Vec<Text>``, an inline struct): one for each
field of each value it decodes or encodes. Signing a batch of 100 registrations, or
reading a block's events, makes hundreds. A class is ~1.7 kB with its dict, method
resolution order and ``abc`` caches, and it is cyclic garbage as soon as the value is
decoded, freed only by a full collection of the cyclic garbage collector. At 10,000
workers, ``run`` held 12,600 such classes (21 MB) through its steady state and 15,900
during convergence (docs/decisions.md, "run's memory at 10,000 workers").

``CachingRuntimeConfiguration`` answers each type string with the class made the first
time. A class scalecodec makes for a type string depends only on the registry (its base
is looked up there) and holds no state of its own, so the answer is the same as long as
the registry is: every method that changes the registry forgets the cached classes. One
exception keeps them: ``update_type_registry_types`` with the very definitions it was
last given for every name (substrate-interface's ``runtime_call`` adds the runtime API's
types again on each call, the account nonce's and the fee estimate's included; doing it
would make new classes for them each time). As scalecodec does, a class it returns gets
``runtime_config`` set to the configuration that answered (its decoders follow it).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from scalecodec.base import RuntimeConfigurationObject

_REGISTRY_CHANGES = (
    "clear_type_registry",
    "update_type_registry",
    "set_active_spec_version_id",
    "update_from_scale_info_types",
    "add_portable_registry",
    "add_contract_metadata_dict_to_type_registry",
)


def _key(type_string: Any) -> Hashable | None:
    """A dict key for a type string (an inline struct is a dict of field types); None
    for what cannot be one."""
    if isinstance(type_string, str):
        return type_string
    if isinstance(type_string, dict):
        key = ("struct", tuple(type_string.items()))
        try:
            hash(key)
        except TypeError:
            return None
        return key
    return None


class CachingRuntimeConfiguration(RuntimeConfigurationObject):  # type: ignore[misc]
    """A ``RuntimeConfigurationObject`` whose ``get_decoder_class`` remembers its answers
    until the registry changes (given to ``SubstrateInterface`` as its ``runtime_config``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._classes: dict[Hashable, Any] = {}
        self._given_types: dict[str, Any] = {}
        """Definitions ``update_type_registry_types`` applied since the last other change."""
        super().__init__(*args, **kwargs)

    def get_decoder_class(self, type_string: str | dict[str, Any]) -> Any:
        key = _key(type_string)
        if key is None:
            return super().get_decoder_class(type_string)
        found = self._classes.get(key)
        if found is None:
            found = super().get_decoder_class(type_string)
            if found is not None:
                self._classes[key] = found
        else:
            found.runtime_config = self
        return found

    def update_type_registry_types(self, types_dict: dict[str, Any]) -> None:
        given = self._given_types
        if all(name in given and given[name] == value for name, value in types_dict.items()):
            return
        self._classes.clear()
        try:
            super().update_type_registry_types(types_dict)
        finally:
            self._classes.clear()
        given.update(types_dict)

    def _forget(self) -> None:
        self._classes.clear()
        self._given_types.clear()


def _forgetting(name: str) -> Any:
    def changed(self: CachingRuntimeConfiguration, *args: Any, **kwargs: Any) -> Any:
        self._forget()
        try:
            return getattr(super(CachingRuntimeConfiguration, self), name)(*args, **kwargs)
        finally:
            self._forget()

    changed.__name__ = name
    changed.__doc__ = f"``{name}``, forgetting the cached classes (the registry changes)."
    return changed


for _name in _REGISTRY_CHANGES:
    setattr(CachingRuntimeConfiguration, _name, _forgetting(_name))
