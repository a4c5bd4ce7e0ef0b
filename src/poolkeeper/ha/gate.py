"""The reconciler's ``PassGate`` under HA: a pass may sign and relay only while the
shard's fence says so, and the first pass after winning the shard first loads the
previous owner's unsettled extrinsics from etcd and recovers them (same bytes, or proven
dropped) so none of their actions is planned again; from then on the daily top-up cap
counts what the chain shows was sent today, not only this process's journal."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from poolkeeper.ha.agent import ShardAgent
from poolkeeper.ha.journal import MirroredJournal
from poolkeeper.ha.ports import LeaseBackendError


@dataclass
class HaGate:
    agent: ShardAgent
    journal: MirroredJournal
    log: Callable[[str], None]
    _recovered_lease: int = 0

    async def allow(self, reconciler: Any) -> bool:
        if not self.agent.may_write():
            return False
        lease = self.agent.fence.lease
        if self._recovered_lease != lease:
            # Top-ups another owner sent before this win count against today's cap.
            self.journal.note_won(self.agent.fence.since_wall or self.agent.wall())
            try:
                adopted = self.journal.adopt_remote()
            except LeaseBackendError as exc:
                self.log(f"HA: cannot read the shard's journal from etcd ({exc}); waiting")
                return False
            if adopted:
                self.log(f"HA: took over {len(adopted)} unsettled extrinsic(s) from etcd")
            recover: Callable[[], Awaitable[list[Any]]] = reconciler.recover
            for r in await recover():
                self.log(f"recovered from the journal: {r.action_id}: {'ok' if r.ok else r.error}")
            with contextlib.suppress(LeaseBackendError):
                self.journal.drop_settled_remote()
            self._recovered_lease = lease
        return self.agent.may_write()
