"""The product's pRuntime messages, as typed dataclasses over the generated protobuf code.

The wire format has one source, ``proto/pruntime_rpc.proto``; ``scripts/gen-proto``
generates ``pruntime_rpc_pb2`` (upb classes and type stubs) from it. Poolkeeper's own code
and tests build and read small frozen dataclasses (``messages``), which are hashable,
comparable and free of protobuf's mutable containers; this module converts between the
two at the boundary: ``encode`` builds the generated message and serializes it, ``decode``
parses with upb and copies the set fields out. Each dataclass field still carries its
protobuf number and kind (``pb``) for the JSON mode and for the test that checks they
agree with the generated descriptor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, Literal, Self

from google.protobuf.message import DecodeError, EncodeError
from google.protobuf.message import Message as _PbMessage

from poolkeeper.pruntime import pruntime_rpc_pb2

Kind = Literal["bool", "int32", "uint32", "uint64", "string", "bytes", "message"]


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


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """What converting one message class needs, worked out once per class."""

    generated: type[_PbMessage]
    names: tuple[str, ...]
    nested: tuple[tuple[str, type[ProtoMessage]], ...]
    from_pb: Callable[[Any], Any]


def _plan_for(cls: type[ProtoMessage]) -> _Plan:
    specs: list[tuple[str, FieldSpec]] = [
        (f.name, f.metadata["pb"])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if "pb" in f.metadata
    ]
    names = tuple(name for name, _ in specs)
    nested = tuple((name, spec.message) for name, spec in specs if spec.message is not None)
    repeated = tuple(name for name, spec in specs if spec.repeated)
    present = tuple(name for name, spec in specs if spec.optional and spec.message is None)
    fields = attrgetter(*names) if names else None
    build: Callable[..., Any] = cls

    def from_pb(message: Any) -> Any:
        # One C call reads every field; only the few with presence or containers need more.
        if fields is None:
            return build()
        if len(names) == 1 and not (nested or repeated or present):
            return build(fields(message))
        values = dict(zip(names, fields(message), strict=True))
        for name in present:
            if not message.HasField(name):
                values[name] = None
        for name, sub in nested:
            values[name] = sub.from_pb(values[name]) if message.HasField(name) else None
        for name in repeated:
            values[name] = tuple(values[name])
        return build(**values)

    return _Plan(getattr(pruntime_rpc_pb2, cls.__name__), names, nested, from_pb)


class ProtoMessage:
    """Base of the dataclass messages; subclasses must be dataclasses using ``pb`` and be
    named as their message in ``proto/pruntime_rpc.proto``."""

    _plan: ClassVar[_Plan]

    @classmethod
    def _conversion(cls) -> _Plan:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            plan = cls._plan = _plan_for(cls)
        return plan

    def to_pb(self) -> _PbMessage:
        """The generated protobuf message holding the same values."""
        plan = self._conversion()
        values: dict[str, Any] = {}
        for name in plan.names:
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        for name, _ in plan.nested:
            if name in values:
                values[name] = values[name].to_pb()
        return plan.generated(**values)

    @classmethod
    def from_pb(cls, message: _PbMessage) -> Self:
        """Copy a generated message's fields (unset optional ones become ``None``)."""
        converted: Self = cls._conversion().from_pb(message)
        return converted

    def encode(self) -> bytes:
        """Serialize to the protobuf binary format (fields in number order)."""
        try:
            return self.to_pb().SerializeToString()
        except (EncodeError, TypeError, ValueError) as exc:
            raise WireError(f"{type(self).__name__}: {exc}") from exc

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Self:
        """Parse the protobuf binary format; raise ``WireError`` on malformed input."""
        plan = cls._conversion()
        try:
            message = plan.generated.FromString(bytes(data))
        except DecodeError as exc:
            raise WireError(f"{cls.__name__}: {exc}") from exc
        decoded: Self = plan.from_pb(message)
        return decoded
