"""pRuntime's protobuf messages for the simulator: the classes generated from the .proto.

The simulator is a peer of the product and imports none of it, so it carries its own copy
of the code ``scripts/gen-proto`` generates from ``proto/pruntime_rpc.proto`` (the one
source of the wire format; a test keeps both copies equal to it). ``to_serde_json`` and
``from_serde_json`` reproduce pRuntime's JSON mode: serde over prost structs, not
proto3-JSON.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from poolkeeper_devnet.pruntime import pruntime_rpc_pb2

_T = descriptor_pb2.FieldDescriptorProto

# Fields pRuntime marks #[serde(skip)]: absent from JSON mode.
_SERDE_SKIP = {("InitRuntimeResponse", "attestation")}

MESSAGES: dict[str, type[Message]] = {
    name: getattr(pruntime_rpc_pb2, name)
    for name in pruntime_rpc_pb2.DESCRIPTOR.message_types_by_name
}


def new(name: str, **fields: Any) -> Any:
    """An instance of message ``name``."""
    return MESSAGES[name](**fields)


def to_serde_json(message: Message) -> dict[str, Any]:
    """pRuntime's JSON shape: every field by name, bytes as int arrays, unset as null."""
    out: dict[str, Any] = {}
    type_name = message.DESCRIPTOR.name
    for field in message.DESCRIPTOR.fields:
        if (type_name, field.name) in _SERDE_SKIP:
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            out[field.name] = [_json_value(field.type, item) for item in value]
        elif field.has_presence and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _json_value(field.type, value)
    return out


def _json_value(field_type: int, value: Any) -> Any:
    if field_type == _T.TYPE_BYTES:
        return list(value)
    if field_type == _T.TYPE_MESSAGE:
        return to_serde_json(value)
    return value


class JsonRequestError(ValueError):
    """A JSON request that serde would refuse."""


def from_serde_json(name: str, data: Any) -> Message:
    """Parse a JSON-mode request body (already ``json.loads``-ed) into message ``name``."""
    message = MESSAGES[name]()
    if not isinstance(data, dict):
        raise JsonRequestError(f"invalid type: expected struct {name}")
    for field in message.DESCRIPTOR.fields:
        raw = data.get(field.name)
        if field.name not in data or raw is None:
            if field.is_repeated or field.has_presence:
                continue
            raise JsonRequestError(f"missing field `{field.name}`")
        try:
            if field.is_repeated:
                getattr(message, field.name).extend(
                    bytes(item) if field.type == _T.TYPE_BYTES else item for item in raw
                )
            elif field.type == _T.TYPE_MESSAGE:
                nested = field.message_type
                assert nested is not None
                getattr(message, field.name).CopyFrom(from_serde_json(nested.name, raw))
            elif field.type == _T.TYPE_BYTES:
                setattr(message, field.name, bytes(raw))
            else:
                setattr(message, field.name, raw)
        except (TypeError, ValueError) as exc:
            raise JsonRequestError(f"invalid value for `{field.name}`: {exc}") from exc
    return message
