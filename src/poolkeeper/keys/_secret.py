"""Secret values that refuse to print, pickle or serialise themselves.

A mnemonic that reaches ``repr``, an f-string, a log line, a traceback with locals,
a pickle or a JSON document is a lost pool. Keeping the value inside a type whose
every textual form is ``Secret(***)`` makes the safe path the default one: the only
way to the value is an explicit ``reveal()`` at the single place that needs it.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

import bip39
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from poolkeeper.errors import SecretError
from poolkeeper.keys._redact import register_secret

_MASK = "***"


class Secret:
    """A secret string. Prints as ``Secret(***)``; compare with ``==`` in constant time."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        object.__setattr__(self, "_value", value)
        register_secret(value)

    def reveal(self) -> str:
        """The secret value. Call it only where the value is consumed, never to show it."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled or copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled or copied")

    def __getstate__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled or copied")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _refuse_serialisation, when_used="json"
            ),
        )


def _refuse_serialisation(value: object) -> NoReturn:
    raise SecretError(f"refusing to serialise a {type(value).__name__} to JSON")


class Mnemonic(Secret):
    """A checked BIP39 English mnemonic, whitespace normalised to single spaces."""

    __slots__ = ()

    def __init__(self, phrase: str) -> None:
        if not isinstance(phrase, str):
            raise TypeError("a Mnemonic holds a str")
        register_secret(phrase)
        words = phrase.split()
        normalised = " ".join(words)
        if not words or not bip39.bip39_validate(normalised):
            raise SecretError(
                f"the master secret is not a valid BIP39 English mnemonic "
                f"({len(words)} words; expected 12, 15, 18, 21 or 24 words with a valid checksum)"
            )
        super().__init__(normalised)

    @property
    def word_count(self) -> int:
        return len(self._value.split())

    @classmethod
    def generate(cls, words: int = 24) -> Mnemonic:
        """A fresh random mnemonic (from the operating system's CSPRNG)."""
        if words not in (12, 15, 18, 21, 24):
            raise ValueError("words must be 12, 15, 18, 21 or 24")
        return cls(bip39.bip39_generate(words))
