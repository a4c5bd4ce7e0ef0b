"""The public keys pRuntimes reported, remembered across processes.

A worker whose pRuntime is down reports no public key, and without one its chain state
(session, stake, pool) cannot be joined to it: ``status`` showed it as a bare
"Unreachable" unless ``pubkey:`` was written in the inventory. The last key each
endpoint reported is kept in ``<state_dir>/pubkeys.json`` (public data) so a down
machine keeps its chain state in every view.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from poolkeeper.model.observed import Observed


class PubkeyMemory:
    """Endpoint → last reported public key (lowercase hex, no 0x), backed by a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, str] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict):
            self._keys = {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def get(self) -> dict[str, str]:
        return dict(self._keys)

    def note(self, observed: Observed) -> None:
        """Remember the keys reported now; the file is rewritten only when one changed."""
        changed = False
        for endpoint, prt in observed.pruntimes.items():
            key = prt.info.public_key if prt.info else None
            if key:
                key = key.lower().removeprefix("0x")
                if self._keys.get(endpoint) != key:
                    self._keys[endpoint] = key
                    changed = True
        if not changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._keys, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            return  # a read-only state dir costs only this convenience
