"""How fast each pRuntime syncs, measured between observations, for the sync waits' ETAs.

A pRuntime reports the next block it expects; two observations some seconds apart give
the blocks it advanced per second. The planner must not read clocks, so the rate is
measured here and handed over in ``Observed.sync_rates``. The last sample per endpoint
is kept in ``sync_rates.json`` of the state directory (written atomically), so a
one-shot ``plan`` after a ``run`` (or after another ``plan``) has a rate too; losing the
file only means the next plan says "ETA once a sync rate is measured".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from poolkeeper.model.observed import Observed

MAX_SAMPLE_AGE_SECONDS = 900.0
"""An older sample says nothing about the current rate."""
MIN_INTERVAL_SECONDS = 1.0
"""Two samples closer than this are too noisy: the older one is kept."""
SMOOTHING = 0.5
"""Weight of the newest measurement in the smoothed rate."""


class _Sample(NamedTuple):
    """One endpoint's last sample (a tuple: 10,000 are built every pass)."""

    blocknum: int
    at: float
    """Unix seconds the pRuntime was read."""
    rate: float | None


class SyncRateMemory:
    """The last (block, time, smoothed rate) per endpoint; ``path`` None keeps it in memory."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._samples: dict[str, _Sample] = self._load()

    def _load(self) -> dict[str, _Sample]:
        if self._path is None:
            return {}
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return {
                str(endpoint): _Sample(
                    int(item["blocknum"]),
                    float(item["at"]),
                    None if item.get("rate") is None else float(item["rate"]),
                )
                for endpoint, item in data.items()
            }
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            return {}  # no memory (or unreadable): rates are measured afresh

    def note(self, observed: Observed) -> Observed:
        """Measure each pRuntime against its previous sample; ``observed`` with the rates."""
        rates: dict[str, float] = {}
        for gone in set(self._samples) - set(observed.pruntimes):
            del self._samples[gone]  # no longer in the inventory
        for endpoint, seen in observed.pruntimes.items():
            info = seen.info
            if info is None or not info.initialized or seen.read_at is None:
                continue
            at = seen.read_at.timestamp()
            previous = self._samples.get(endpoint)
            sample = _Sample(info.blocknum, at, None)
            if previous is not None and 0 <= at - previous.at < MIN_INTERVAL_SECONDS:
                sample = previous  # too close to measure: keep the older sample
            elif (
                previous is not None
                and at - previous.at <= MAX_SAMPLE_AGE_SECONDS
                and info.blocknum >= previous.blocknum
            ):
                measured = (info.blocknum - previous.blocknum) / (at - previous.at)
                rate = measured
                if previous.rate is not None:
                    rate = SMOOTHING * measured + (1 - SMOOTHING) * previous.rate
                sample = _Sample(info.blocknum, at, rate)
            self._samples[endpoint] = sample
            if sample.rate is not None:
                rates[endpoint] = round(sample.rate, 3)
        self._save()
        return observed.model_copy(update={"sync_rates": rates})

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            endpoint: {"blocknum": s.blocknum, "at": s.at, "rate": s.rate}
            for endpoint, s in sorted(self._samples.items())
        }
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".sync_rates.")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # ``json.dumps``, not ``json.dump``: dump encodes in pure Python, chunk by
                # chunk (0.4 s a pass at 10,000 endpoints, docs/benchmarks.md).
                handle.write(json.dumps(data))
            os.replace(tmp, self._path)
        except OSError:
            pass  # an ETA is a convenience: a read-only state directory must not stop a pass
