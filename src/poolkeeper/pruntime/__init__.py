"""The pRuntime port and its httpx adapter speaking pRuntime's protobuf HTTP API.

Only this package knows pRuntime's wire format (protobuf envelopes and the pRPC error
answers). SCALE payloads inside ``encoded_*`` fields are the relay and chain layers' business.
"""

from poolkeeper.pruntime._wire import ProtoMessage
from poolkeeper.pruntime.client import HttpPRuntimeClient, PRuntimeClient, PRuntimeTransport
from poolkeeper.pruntime.messages import (
    InitRuntimeRequest,
    InitRuntimeResponse,
    PhactoryInfo,
    SystemInfo,
)

__all__ = [
    "HttpPRuntimeClient",
    "InitRuntimeRequest",
    "InitRuntimeResponse",
    "PRuntimeClient",
    "PRuntimeTransport",
    "PhactoryInfo",
    "ProtoMessage",
    "SystemInfo",
]
