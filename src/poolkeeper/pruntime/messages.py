"""pRuntime's protobuf messages (the subset a pool manager uses), as typed dataclasses.

Field numbers follow Phala's ``pruntime_rpc.proto`` (PROTOCOL.md §1.2-§1.3). ``bytes``
fields named ``encoded_*`` hold parity-SCALE payloads that other layers encode and
decode; this module only knows the protobuf envelope. ``PhactoryInfo`` is also the
typed result of ``GetInfo`` in JSON mode (``PhactoryInfo.from_json``), whose serde
shape differs from proto3-JSON: snake_case, bytes as arrays of ints, ``null`` for unset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from poolkeeper.pruntime._wire import ProtoMessage, WireError, pb

__all__ = [
    "Attestation",
    "Blocks",
    "ChainState",
    "CombinedHeadersToSync",
    "Empty",
    "GatekeeperStatus",
    "GetEgressMessagesResponse",
    "GetEndpointResponse",
    "GetRuntimeInfoRequest",
    "HeadersSyncedTo",
    "HeadersToSync",
    "InitRuntimeRequest",
    "InitRuntimeResponse",
    "MemoryUsage",
    "ParaHeadersToSync",
    "PhactoryInfo",
    "PrpcError",
    "SignEndpointsRequest",
    "SyncedTo",
    "SystemInfo",
    "WireError",
]


@dataclasses.dataclass(frozen=True)
class Empty(ProtoMessage):
    """``google.protobuf.Empty``: a zero-length body."""


@dataclasses.dataclass(frozen=True)
class PrpcError(ProtoMessage):
    """The body of every pRPC error answer (404/400/500)."""

    message: str = pb(1, "string")


@dataclasses.dataclass(frozen=True)
class GatekeeperStatus(ProtoMessage):
    """Gatekeeper role: 0 None, 1 Dummy, 2 Active."""

    role: int = pb(1, "uint32")
    master_public_key: str = pb(2, "string")


@dataclasses.dataclass(frozen=True)
class MemoryUsage(ProtoMessage):
    """Enclave heap figures, in bytes."""

    rust_used: int = pb(1, "uint64")
    rust_peak_used: int = pb(2, "uint64")
    total_peak_used: int = pb(3, "uint64")
    free: int = pb(4, "uint64")
    rust_spike: int = pb(5, "uint64")


@dataclasses.dataclass(frozen=True)
class SystemInfo(ProtoMessage):
    """The initialized runtime's identity and registration state."""

    registered: bool = pb(1, "bool")
    public_key: str = pb(2, "string")
    ecdh_public_key: str = pb(3, "string")
    gatekeeper: GatekeeperStatus | None = pb(4, "message", message=GatekeeperStatus)
    number_of_clusters: int = pb(5, "uint64")
    number_of_contracts: int = pb(6, "uint64")
    max_supported_consensus_version: int = pb(7, "uint32")
    genesis_block: int = pb(8, "uint32")


@dataclasses.dataclass(frozen=True)
class PhactoryInfo(ProtoMessage):
    """``GetInfo``'s answer. ``headernum``, ``para_headernum`` and ``blocknum`` are the
    *next* numbers expected; hex strings carry no ``0x``."""

    initialized: bool = pb(1, "bool")
    registered: bool = pb(2, "bool")
    genesis_block_hash: str | None = pb(4, "string", optional=True)
    public_key: str | None = pb(5, "string", optional=True)
    ecdh_public_key: str | None = pb(6, "string", optional=True)
    headernum: int = pb(7, "uint32")
    para_headernum: int = pb(8, "uint32")
    blocknum: int = pb(9, "uint32")
    state_root: str = pb(10, "string")
    dev_mode: bool = pb(11, "bool")
    pending_messages: int = pb(12, "uint64")
    score: int = pb(13, "uint64")
    gatekeeper: GatekeeperStatus | None = pb(14, "message", message=GatekeeperStatus)
    version: str = pb(15, "string")
    git_revision: str = pb(16, "string")
    memory_usage: MemoryUsage | None = pb(18, "message", message=MemoryUsage)
    waiting_for_paraheaders: bool = pb(21, "bool")
    system: SystemInfo | None = pb(23, "message", message=SystemInfo)
    can_load_chain_state: bool = pb(24, "bool")
    safe_mode_level: int = pb(25, "uint32")
    current_block_time: int = pb(26, "uint64")
    max_supported_pink_runtime_version: str = pb(27, "string")
    supported_attestation_methods: tuple[str, ...] = pb(28, "string", repeated=True)
    live_sidevm_instances: int = pb(29, "uint32")
    query_timeout: int = pb(30, "uint32")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhactoryInfo:
        """Build from GetInfo's JSON mode (serde over the prost struct)."""
        info: PhactoryInfo = _from_json(cls, data)
        return info


@dataclasses.dataclass(frozen=True)
class SyncedTo(ProtoMessage):
    """The last number a sync call reached."""

    synced_to: int = pb(1, "uint32")


@dataclasses.dataclass(frozen=True)
class HeadersToSync(ProtoMessage):
    """``SyncHeader``'s request: SCALE ``Vec<HeaderToSync>`` and an optional set change."""

    encoded_headers: bytes = pb(1, "bytes")
    encoded_authority_set_change: bytes | None = pb(2, "bytes", optional=True)


@dataclasses.dataclass(frozen=True)
class ParaHeadersToSync(ProtoMessage):
    """``SyncParaHeader``'s request: SCALE ``Vec<Header>`` and the ``Paras.Heads`` proof."""

    encoded_headers: bytes = pb(1, "bytes")
    proof: tuple[bytes, ...] = pb(2, "bytes", repeated=True)


@dataclasses.dataclass(frozen=True)
class CombinedHeadersToSync(ProtoMessage):
    """``SyncCombinedHeaders``'s request: relay part first, then the parachain part."""

    encoded_relaychain_headers: bytes = pb(1, "bytes")
    authority_set_change: bytes | None = pb(2, "bytes", optional=True)
    encoded_parachain_headers: bytes = pb(3, "bytes")
    proof: tuple[bytes, ...] = pb(4, "bytes", repeated=True)


@dataclasses.dataclass(frozen=True)
class HeadersSyncedTo(ProtoMessage):
    """``SyncCombinedHeaders``'s answer."""

    relaychain_synced_to: int = pb(1, "uint32")
    parachain_synced_to: int = pb(2, "uint32")


@dataclasses.dataclass(frozen=True)
class Blocks(ProtoMessage):
    """``DispatchBlocks``'s request: SCALE ``Vec<BlockHeaderWithChanges>``."""

    encoded_blocks: bytes = pb(1, "bytes")


@dataclasses.dataclass(frozen=True)
class InitRuntimeRequest(ProtoMessage):
    """``InitRuntime``'s request (field 1 ``skip_ra`` is retired but still on the wire)."""

    skip_ra: bool = pb(1, "bool")
    encoded_genesis_info: bytes = pb(2, "bytes")
    debug_set_key: bytes | None = pb(3, "bytes", optional=True)
    encoded_genesis_state: bytes = pb(4, "bytes")
    encoded_operator: bytes | None = pb(5, "bytes", optional=True)
    is_parachain: bool = pb(6, "bool")
    attestation_provider: bytes | None = pb(7, "bytes", optional=True)


@dataclasses.dataclass(frozen=True)
class GetRuntimeInfoRequest(ProtoMessage):
    """``GetRuntimeInfo``'s request; a given operator replaces the embedded one."""

    force_refresh_ra: bool = pb(1, "bool")
    encoded_operator: bytes | None = pb(2, "bytes", optional=True)


@dataclasses.dataclass(frozen=True)
class Attestation(ProtoMessage):
    """Remote attestation. ``encoded_report`` is SCALE ``Option<AttestationReport>``
    (``0x00`` with provider None); ``provider`` is JSON text ("ias", "dcap", "null")."""

    version: int = pb(1, "int32")
    provider: str = pb(2, "string")
    timestamp: int = pb(4, "uint64")
    encoded_report: bytes = pb(5, "bytes")


@dataclasses.dataclass(frozen=True)
class InitRuntimeResponse(ProtoMessage):
    """``InitRuntime``/``GetRuntimeInfo``'s answer; ``encoded_runtime_info`` is SCALE
    ``WorkerRegistrationInfoV2``."""

    encoded_runtime_info: bytes = pb(1, "bytes")
    encoded_genesis_block_hash: bytes = pb(2, "bytes")
    encoded_public_key: bytes = pb(3, "bytes")
    encoded_ecdh_public_key: bytes = pb(4, "bytes")
    attestation: Attestation | None = pb(5, "message", message=Attestation)


@dataclasses.dataclass(frozen=True)
class GetEgressMessagesResponse(ProtoMessage):
    """SCALE ``Vec<(MessageOrigin, Vec<SignedMessage>)>``."""

    encoded_messages: bytes = pb(1, "bytes")


@dataclasses.dataclass(frozen=True)
class ChainState(ProtoMessage):
    """``LoadChainState``'s request: SCALE ``Vec<(Bytes, Bytes)>`` at ``block_number``."""

    block_number: int = pb(1, "uint32")
    encoded_state: bytes = pb(2, "bytes")


@dataclasses.dataclass(frozen=True)
class GetEndpointResponse(ProtoMessage):
    """SCALE ``WorkerEndpointPayload`` and its signature, when the worker has endpoints."""

    encoded_endpoint_payload: bytes | None = pb(1, "bytes", optional=True)
    signature: bytes | None = pb(2, "bytes", optional=True)


@dataclasses.dataclass(frozen=True)
class SignEndpointsRequest(ProtoMessage):
    """``SignEndpointInfo``'s request: SCALE ``Vec<String>``."""

    encoded_endpoints: bytes = pb(1, "bytes")


def _from_json(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """Build a message from pRuntime's serde JSON, ignoring fields this module lacks."""
    if not isinstance(data, Mapping):
        raise WireError(f"{cls.__name__}: expected a JSON object")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        spec = field.metadata.get("pb")
        if spec is None or field.name not in data:
            continue
        raw = data[field.name]
        if raw is None:
            continue
        if spec.repeated:
            values[field.name] = tuple(_json_scalar(spec.kind, item) for item in raw)
        elif spec.kind == "message":
            values[field.name] = _from_json(spec.message, raw)
        else:
            values[field.name] = _json_scalar(spec.kind, raw)
    return cls(**values)


def _json_scalar(kind: str, raw: Any) -> Any:
    if kind == "bytes":
        return bytes(raw)
    if kind == "string":
        return str(raw)
    if kind == "bool":
        return bool(raw)
    return int(raw)
