"""The chain: small ports (``poolkeeper.chain.ports``) and their Substrate adapter.

Only this package speaks to a Substrate node; everything above sees plain model values.
The public surface is small, in the style of httpx: ``SubstrateChain`` (the adapter, which
implements ``ChainReader`` and ``ChainWriter``), ``AsyncRpc`` (the pipelined JSON-RPC
connection one endpoint's chain adapter, head follower and relays share: the composition
root builds one per endpoint), ``cache_bytes`` (what the relay caches hold, for the memory
diagnosis) and the ports module. Everything else in
the package is private (``_``-prefixed) and may change without notice.

What the adapter raises (all from ``poolkeeper.errors``; callers catch the branch they can
act on):

    TemporaryError              retry with backoff
    ├── ChainUnavailable        the node cannot be reached, dropped the connection, or a
    │                           request timed out
    └── ChainNodeError          the node answered a request with a JSON-RPC error (names
                                the node and the method)
    PermanentError
    ├── ChainCallFailed         an extrinsic was rejected or dispatched with an error
    └── ChainHistoryUnavailable the node has no state for the past blocks asked about

``SubstrateChain`` is imported lazily: the ports are used by modules (planning, apply)
that should not pay for loading substrate-interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poolkeeper.chain._lru import cache_bytes

if TYPE_CHECKING:
    from poolkeeper.chain._adapter import SubstrateChain
    from poolkeeper.chain._rpc import AsyncRpc

__all__ = ["AsyncRpc", "SubstrateChain", "cache_bytes"]


def __getattr__(name: str) -> Any:
    if name == "SubstrateChain":
        from poolkeeper.chain._adapter import SubstrateChain

        return SubstrateChain
    if name == "AsyncRpc":
        from poolkeeper.chain._rpc import AsyncRpc

        return AsyncRpc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
