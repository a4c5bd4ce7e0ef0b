"""``GetInfo`` of one pRuntime as a model value, for the observer.

The observer depends on the ``PRuntimeInfoSource`` Protocol only; this adapter turns the
pRuntime port's protobuf answer into ``PRuntimeInfo`` through any transport that hands
out clients (the shared ``PRuntimeTransport``, or a fake in unit tests).
"""

from __future__ import annotations

import sys
from typing import Protocol

from poolkeeper.model.observed import PRuntimeInfo
from poolkeeper.model.trusted import trusted
from poolkeeper.pruntime import PhactoryInfo


class InfoClient(Protocol):
    """The one call of ``PRuntimeClient`` the observer makes."""

    async def get_info(self) -> PhactoryInfo: ...


class PRuntimeClients(Protocol):
    """Hands out a client per pRuntime endpoint (``PRuntimeTransport`` does)."""

    def client(self, url: str) -> InfoClient: ...


class PRuntimeInfoReader:
    """``GetInfo`` through the shared transport, as model values."""

    def __init__(self, transport: PRuntimeClients) -> None:
        self._transport = transport

    async def get_info(self, endpoint: str) -> PRuntimeInfo:
        return info_of(await self._transport.client(endpoint).get_info())


_INFO_FIELDS = set(PRuntimeInfo.model_fields)
"""Every field is set: one fields set shared by every ``PRuntimeInfo`` built here (its own
would be ~730 bytes a pRuntime; never mutated, the model is frozen)."""


def info_of(info: PhactoryInfo) -> PRuntimeInfo:
    """The model value of a decoded ``GetInfo`` answer, built as ``trusted``: the codec's
    values are already typed (bool, int, str; every 10,000-worker pass builds 10,000). The
    texts every pRuntime of a fleet shares (genesis hash, version) are shared objects."""
    return trusted(
        PRuntimeInfo,
        _INFO_FIELDS,
        {
            "initialized": info.initialized,
            "registered": info.registered,
            "headernum": info.headernum,
            "para_headernum": info.para_headernum,
            "blocknum": info.blocknum,
            "public_key": info.public_key,
            "ecdh_public_key": info.ecdh_public_key,
            "genesis_block_hash": _shared(info.genesis_block_hash),
            "score": info.score,
            "version": _shared(info.version),
            "git_revision": _shared(info.git_revision),
            "dev_mode": info.dev_mode,
            "pending_messages": info.pending_messages,
            "genesis_block": info.system.genesis_block if info.system else None,
        },
    )


def _shared(text: str | None) -> str | None:
    return sys.intern(text) if text else text
