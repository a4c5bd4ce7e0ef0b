"""pRuntime's protobuf messages for the simulator, built at import time with google.protobuf.

The simulator is a peer of the product and shares no code with it, so it declares the
messages again, here as a ``FileDescriptorProto`` turned into classes by
``message_factory`` (no protoc needed). Two independent encoders meeting on the wire is
also what makes the client tests meaningful. ``to_serde_json`` and ``from_serde_json``
reproduce pRuntime's JSON mode: serde over prost structs, not proto3-JSON.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_T = descriptor_pb2.FieldDescriptorProto
_KINDS = {
    "bool": _T.TYPE_BOOL,
    "int32": _T.TYPE_INT32,
    "uint32": _T.TYPE_UINT32,
    "uint64": _T.TYPE_UINT64,
    "string": _T.TYPE_STRING,
    "bytes": _T.TYPE_BYTES,
    "message": _T.TYPE_MESSAGE,
}

# name -> [(field, number, kind, flags, message type)]; flags: "opt" proto3 optional, "rep" repeated
_SCHEMA: dict[str, list[tuple[str, int, str, str, str]]] = {
    "Empty": [],
    "PrpcError": [("message", 1, "string", "", "")],
    "GatekeeperStatus": [("role", 1, "uint32", "", ""), ("master_public_key", 2, "string", "", "")],
    "MemoryUsage": [
        ("rust_used", 1, "uint64", "", ""),
        ("rust_peak_used", 2, "uint64", "", ""),
        ("total_peak_used", 3, "uint64", "", ""),
        ("free", 4, "uint64", "", ""),
        ("rust_spike", 5, "uint64", "", ""),
    ],
    "SystemInfo": [
        ("registered", 1, "bool", "", ""),
        ("public_key", 2, "string", "", ""),
        ("ecdh_public_key", 3, "string", "", ""),
        ("gatekeeper", 4, "message", "", "GatekeeperStatus"),
        ("number_of_clusters", 5, "uint64", "", ""),
        ("number_of_contracts", 6, "uint64", "", ""),
        ("max_supported_consensus_version", 7, "uint32", "", ""),
        ("genesis_block", 8, "uint32", "", ""),
    ],
    "PhactoryInfo": [
        ("initialized", 1, "bool", "", ""),
        ("registered", 2, "bool", "", ""),
        ("genesis_block_hash", 4, "string", "opt", ""),
        ("public_key", 5, "string", "opt", ""),
        ("ecdh_public_key", 6, "string", "opt", ""),
        ("headernum", 7, "uint32", "", ""),
        ("para_headernum", 8, "uint32", "", ""),
        ("blocknum", 9, "uint32", "", ""),
        ("state_root", 10, "string", "", ""),
        ("dev_mode", 11, "bool", "", ""),
        ("pending_messages", 12, "uint64", "", ""),
        ("score", 13, "uint64", "", ""),
        ("gatekeeper", 14, "message", "", "GatekeeperStatus"),
        ("version", 15, "string", "", ""),
        ("git_revision", 16, "string", "", ""),
        ("memory_usage", 18, "message", "", "MemoryUsage"),
        ("waiting_for_paraheaders", 21, "bool", "", ""),
        ("system", 23, "message", "", "SystemInfo"),
        ("can_load_chain_state", 24, "bool", "", ""),
        ("safe_mode_level", 25, "uint32", "", ""),
        ("current_block_time", 26, "uint64", "", ""),
        ("max_supported_pink_runtime_version", 27, "string", "", ""),
        ("supported_attestation_methods", 28, "string", "rep", ""),
        ("live_sidevm_instances", 29, "uint32", "", ""),
        ("query_timeout", 30, "uint32", "", ""),
    ],
    "SyncedTo": [("synced_to", 1, "uint32", "", "")],
    "HeadersToSync": [
        ("encoded_headers", 1, "bytes", "", ""),
        ("encoded_authority_set_change", 2, "bytes", "opt", ""),
    ],
    "ParaHeadersToSync": [
        ("encoded_headers", 1, "bytes", "", ""),
        ("proof", 2, "bytes", "rep", ""),
    ],
    "CombinedHeadersToSync": [
        ("encoded_relaychain_headers", 1, "bytes", "", ""),
        ("authority_set_change", 2, "bytes", "opt", ""),
        ("encoded_parachain_headers", 3, "bytes", "", ""),
        ("proof", 4, "bytes", "rep", ""),
    ],
    "HeadersSyncedTo": [
        ("relaychain_synced_to", 1, "uint32", "", ""),
        ("parachain_synced_to", 2, "uint32", "", ""),
    ],
    "Blocks": [("encoded_blocks", 1, "bytes", "", "")],
    "InitRuntimeRequest": [
        ("skip_ra", 1, "bool", "", ""),
        ("encoded_genesis_info", 2, "bytes", "", ""),
        ("debug_set_key", 3, "bytes", "opt", ""),
        ("encoded_genesis_state", 4, "bytes", "", ""),
        ("encoded_operator", 5, "bytes", "opt", ""),
        ("is_parachain", 6, "bool", "", ""),
        ("attestation_provider", 7, "bytes", "opt", ""),
    ],
    "GetRuntimeInfoRequest": [
        ("force_refresh_ra", 1, "bool", "", ""),
        ("encoded_operator", 2, "bytes", "opt", ""),
    ],
    "Attestation": [
        ("version", 1, "int32", "", ""),
        ("provider", 2, "string", "", ""),
        ("timestamp", 4, "uint64", "", ""),
        ("encoded_report", 5, "bytes", "", ""),
    ],
    "InitRuntimeResponse": [
        ("encoded_runtime_info", 1, "bytes", "", ""),
        ("encoded_genesis_block_hash", 2, "bytes", "", ""),
        ("encoded_public_key", 3, "bytes", "", ""),
        ("encoded_ecdh_public_key", 4, "bytes", "", ""),
        ("attestation", 5, "message", "opt", "Attestation"),
    ],
    "GetEgressMessagesResponse": [("encoded_messages", 1, "bytes", "", "")],
    "ChainState": [("block_number", 1, "uint32", "", ""), ("encoded_state", 2, "bytes", "", "")],
    "GetEndpointResponse": [
        ("encoded_endpoint_payload", 1, "bytes", "opt", ""),
        ("signature", 2, "bytes", "opt", ""),
    ],
    "SignEndpointsRequest": [("encoded_endpoints", 1, "bytes", "", "")],
}

# Fields pRuntime marks #[serde(skip)]: absent from JSON mode.
_SERDE_SKIP = {("InitRuntimeResponse", "attestation")}
_PACKAGE = "poolkeeper_devnet_pruntime"


def _build() -> dict[str, type[Message]]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="poolkeeper_devnet_pruntime.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _SCHEMA.items():
        message = file_proto.message_type.add(name=name)
        for field_name, number, kind, flags, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=_KINDS[kind])
            field.label = _T.LABEL_REPEATED if flags == "rep" else _T.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if flags == "opt":
                field.proto3_optional = True
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=f"_{field_name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _SCHEMA
    }


MESSAGES = _build()


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
