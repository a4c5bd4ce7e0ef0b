"""What each pool's cap and commission last were when they matched the inventory.

The planner tells an inventory change (plan a ``~ set_cap``) from someone else's change
on chain (drift) only by remembering the value both last agreed on. That memory lives
here, in ``pool_settings.json`` of the state directory, written atomically; losing it
only means a later outside change is planned back as a change instead of reported as
drift first.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from poolkeeper.model.desired import Desired, commission_permill
from poolkeeper.model.observed import Observed


class PoolSettingsMemory:
    """Per pid, the last cap and commission seen equal to the inventory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._known: dict[int, dict[str, int]] = self._load()

    def _load(self) -> dict[int, dict[str, int]]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return {
                int(pid): {str(k): int(v) for k, v in values.items()}
                for pid, values in data.items()
            }
        except (OSError, ValueError, AttributeError, TypeError):
            return {}  # no memory yet (or unreadable): differences are planned as changes

    def note(self, desired: Desired, observed: Observed) -> Observed:
        """Remember settings the chain now agrees on; ``observed`` with the memory."""
        changed = False
        for pool in desired.pools:
            chain = observed.pools.get(pool.pid) if pool.pid is not None else None
            if chain is None:
                continue
            declared = {
                "cap": pool.cap,
                "commission": commission_permill(pool.commission) if pool.commission else None,
            }
            on_chain = {"cap": chain.cap, "commission": chain.commission}
            for setting, value in declared.items():
                known = self._known.setdefault(chain.pid, {})
                if value is not None and on_chain[setting] == value and known.get(setting) != value:
                    known[setting] = value
                    changed = True
        if changed:
            self._save()
        remembered = {pid: dict(values) for pid, values in self._known.items() if values}
        return observed.model_copy(update={"pool_settings_known": remembered})

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        data = {str(pid): values for pid, values in self._known.items() if values}
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".pool_settings.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
        os.replace(tmp, self._path)
