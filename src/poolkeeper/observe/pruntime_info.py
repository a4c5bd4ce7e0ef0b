"""``GetInfo`` of one pRuntime as a model value, for the observer.

The observer depends on the ``PRuntimeInfoSource`` Protocol only; this adapter turns the
pRuntime port's protobuf answer into ``PRuntimeInfo`` through any transport that hands
out clients (the shared ``PRuntimeTransport``, or a fake in unit tests).
"""

from __future__ import annotations

from typing import Protocol

from poolkeeper.model.observed import PRuntimeInfo
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
        info = await self._transport.client(endpoint).get_info()
        return PRuntimeInfo(
            initialized=info.initialized,
            registered=info.registered,
            headernum=info.headernum,
            para_headernum=info.para_headernum,
            blocknum=info.blocknum,
            public_key=info.public_key,
            ecdh_public_key=info.ecdh_public_key,
            genesis_block_hash=info.genesis_block_hash,
            score=info.score,
            version=info.version,
            git_revision=info.git_revision,
            dev_mode=info.dev_mode,
            pending_messages=info.pending_messages,
            genesis_block=info.system.genesis_block if info.system else None,
        )
