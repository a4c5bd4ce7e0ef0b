"""The observer: one pass over the chain and every pRuntime, as one ``Observed``.

The chain is read in batches (pools, their workers, accounts, proxies) while the
pRuntimes are polled concurrently under a bound; workers known only from their
pRuntime (registered but in no pool yet) are read from the chain in one more batch.
A pRuntime that fails is recorded with its error: an unreachable machine is data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from poolkeeper.chain.ports import ChainReader, ChainState
from poolkeeper.errors import PoolkeeperError
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed, PRuntimeInfo, PRuntimeObservation, RelayStatus
from poolkeeper.model.trusted import trusted


class PRuntimeInfoSource(Protocol):
    """Reads one pRuntime's ``PhactoryInfo``."""

    async def get_info(self, endpoint: str) -> PRuntimeInfo: ...


def _pubkey(text: str) -> str:
    text = text.lower()
    return text[2:] if text.startswith("0x") else text


async def poll_pruntimes(
    source: PRuntimeInfoSource, endpoints: Sequence[str], concurrency: int
) -> dict[str, PRuntimeObservation]:
    """``GetInfo`` of every endpoint, at most ``concurrency`` in flight.

    ``concurrency`` pollers take endpoints from one shared iterator: 10,000 endpoints
    cost 500 tasks, not 10,000 tasks queued on a semaphore."""
    results: dict[str, PRuntimeObservation] = {}
    pending = iter(endpoints)

    async def poller() -> None:
        for endpoint in pending:
            try:
                info = await source.get_info(endpoint)
            except PoolkeeperError as exc:
                results[endpoint] = PRuntimeObservation(
                    endpoint=endpoint, error=str(exc), read_at=datetime.now(UTC)
                )
            else:
                results[endpoint] = _answered(endpoint, info)

    await asyncio.gather(*(poller() for _ in range(max(1, min(concurrency, len(endpoints))))))
    return {endpoint: results[endpoint] for endpoint in endpoints}


_ANSWERED_FIELDS = {"endpoint", "info", "read_at"}
"""The fields set of every answered pRuntime's observation, shared (never mutated)."""


def _answered(endpoint: str, info: PRuntimeInfo) -> PRuntimeObservation:
    """The observation of a pRuntime that answered: built as trusted (10,000 a pass) when
    ``info`` is a ``PRuntimeInfo`` (validated, or built as trusted from the codec's typed
    values), validated otherwise."""
    if type(info) is not PRuntimeInfo:
        return PRuntimeObservation(endpoint=endpoint, info=info, read_at=datetime.now(UTC))
    return trusted(
        PRuntimeObservation,
        _ANSWERED_FIELDS,
        {"endpoint": endpoint, "info": info, "error": None, "read_at": datetime.now(UTC)},
    )


def _reports_key(observation: PRuntimeObservation) -> bool:
    return observation.info is not None and bool(observation.info.public_key)


def addresses_of(desired: Desired) -> list[str]:
    """Every declared account address (derived ones must be generated first)."""
    return sorted({a.address for a in desired.accounts if a.address})


async def observe(
    desired: Desired,
    chain: ChainReader,
    pruntimes: PRuntimeInfoSource,
    *,
    relays: Mapping[str, RelayStatus] | None = None,
    relay_details: Mapping[str, str] | None = None,
    topped_up_today: Mapping[str, int] | None = None,
    extra_pids: Sequence[int] = (),
    remembered: Mapping[str, str] | None = None,
) -> Observed:
    """Observe everything the inventory names, in one pass. ``remembered`` (endpoint →
    public key reported earlier) joins a pRuntime reporting no key to its chain state."""
    endpoints = sorted({w.endpoint for w in desired.workers})
    pids = sorted({p.pid for p in desired.pools if p.pid is not None} | set(extra_pids))
    pinned = {_pubkey(w.pubkey) for w in desired.workers if w.pubkey}
    chain_task = asyncio.create_task(chain.read_state(pids, addresses_of(desired), sorted(pinned)))
    polled = await poll_pruntimes(pruntimes, endpoints, desired.settings.pruntime_concurrency)
    state: ChainState = await chain_task
    seen = {
        _pubkey(o.info.public_key)
        for o in polled.values()
        if o.info is not None and o.info.public_key
    }
    recalled = {
        endpoint: _pubkey(key)
        for endpoint, key in (remembered or {}).items()
        if endpoint in polled and not _reports_key(polled[endpoint])
    }
    missing = sorted((seen | set(recalled.values())) - set(state.workers) - pinned)
    workers = dict(state.workers)
    if missing:
        extra = await chain.read_state((), (), missing)
        workers.update(extra.workers)
    return Observed(
        read_at=datetime.now(UTC),
        head=state.head,
        cool_down_period=state.cool_down_period,
        block_time_ms=state.block_time_ms,
        benchmark_duration=state.benchmark_duration,
        pruntimes=polled,
        chain_workers=workers,
        pools=state.pools,
        accounts=state.accounts,
        proxies=state.proxies,
        relays=dict(relays or {}),
        relay_details=dict(relay_details or {}),
        topped_up_today=dict(topped_up_today or {}),
        remembered_pubkeys=recalled,
    )
