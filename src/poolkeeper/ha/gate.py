"""The reconciler's ``PassGate`` under HA: a pass may sign and relay only for the shards
whose fence says so, and the first pass after winning a shard first loads the previous
owner's unsettled extrinsics of that shard from etcd and recovers them (same bytes, or
proven dropped) so none of their actions is planned again; from then on the daily top-up
cap counts what the chain shows was sent today, not only this process's journal.

One process may hold several shards (``run --ha --shard a --shard b``), each through
its own lease: a pass writes for the shards owned (and recovered) at that pass, relays
run only for their workers, and chain actions are signed only by their signers."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from poolkeeper.ha.agent import ShardAgent
from poolkeeper.ha.journal import MirroredJournal
from poolkeeper.ha.ports import LeaseBackendError
from poolkeeper.model.desired import Desired
from poolkeeper.model.shards import pool_shards, signer_shards


@dataclass
class HaGate:
    agents: Mapping[str, ShardAgent]
    """This process's shards, in the order given (``--shard``), each with its agent."""
    journal: MirroredJournal
    log: Callable[[str], None]
    _learned: Desired | None = field(default=None, init=False)
    _signers: dict[str, str] = field(default_factory=dict, init=False)
    """Account name -> shard."""
    _workers: dict[str, str] = field(default_factory=dict, init=False)
    """Worker name -> shard."""

    @property
    def single(self) -> ShardAgent | None:
        """The agent when this process holds one shard (every signer and relay is its)."""
        return next(iter(self.agents.values())) if len(self.agents) == 1 else None

    def learn(self, desired: Desired) -> None:
        """Which shard each signer and worker belongs to (``desired`` with addresses)."""
        if desired is self._learned:
            return
        settings = desired.settings
        self._signers = signer_shards(
            settings.shards, desired.pools, desired.workers, desired.accounts
        )
        pools = pool_shards(settings.shards, desired.pools, desired.workers)
        self._workers = {w.name: pools[w.pool] for w in desired.workers if w.pool in pools}
        self.journal.set_signers(
            {
                a.address: self._signers[a.name]
                for a in desired.accounts
                if a.address and a.name in self._signers
            }
        )
        self._learned = desired

    def shard_of_worker(self, worker: str) -> str | None:
        single = self.single
        return single.shard if single is not None else self._workers.get(worker)

    def may_relay(self, worker: str) -> bool:
        """Whether ``worker``'s relay may run now (its shard owned, recovered, active)."""
        shard = self.shard_of_worker(worker)
        agent = self.agents.get(shard) if shard is not None else None
        return agent is not None and agent.may_sign()

    def may_sign(self, signer: str | None) -> bool:
        """Whether account ``signer`` may sign now (its shard owned, recovered, active)."""
        single = self.single
        if single is not None:
            return single.may_sign()
        shard = self._signers.get(signer or "")
        agent = self.agents.get(shard) if shard is not None else None
        return agent is not None and agent.may_sign()

    async def allow(self, reconciler: Any) -> bool:
        self.learn(reconciler.desired)
        won = [
            agent
            for agent in self.agents.values()
            if agent.may_write() and agent.recovered_lease != agent.fence.lease
        ]
        recovering = []
        for agent in won:
            # Top-ups another owner sent before this win count against today's cap.
            self.journal.note_won(agent.fence.since_wall or agent.wall())
            try:
                adopted = self.journal.adopt_remote(agent.shard)
            except LeaseBackendError as exc:
                self.log(
                    f"HA: cannot read shard {agent.shard}'s journal from etcd ({exc}); waiting"
                )
                continue
            if adopted:
                self.log(
                    f"HA: took over {len(adopted)} unsettled extrinsic(s) of shard "
                    f"{agent.shard} from etcd"
                )
            recovering.append((agent, agent.fence.lease))
        if recovering:
            # Nonces cached while this process last owned these shards may be stale.
            reconciler.executor.forget_nonces(
                a.address
                for a in reconciler.desired.accounts
                if a.address
                and (self.single is not None or self._signers.get(a.name) in _names(recovering))
            )
            # Only the shards this process may write now show their entries (journal).
            recover: Callable[[], Awaitable[list[Any]]] = reconciler.recover
            for r in await recover():
                self.log(f"recovered from the journal: {r.action_id}: {'ok' if r.ok else r.error}")
            for agent, lease in recovering:
                with contextlib.suppress(LeaseBackendError):
                    self.journal.drop_settled_remote(agent.shard)
                agent.recovered_lease = lease
        return any(agent.may_sign() for agent in self.agents.values())


def _names(recovering: list[tuple[ShardAgent, int]]) -> set[str]:
    return {agent.shard for agent, _ in recovering}
