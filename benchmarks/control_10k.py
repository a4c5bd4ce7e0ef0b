"""The control API with 10,000 workers: what a pass costs the loop to publish, how big the
snapshot and a delta are on the wire, and what a client pays to fold them in.

Uses the 10,000-worker inventory and worlds of ``tui_10k.py`` (50 pools; then 1,000
pRuntimes become synced) and the real hub, encoder (with secret redaction) and view:

- publish first: ``StatusHub.publish_observed`` of the fresh world (all rows new);
- snapshot line: the ``snapshot`` message encoded as it goes on the socket;
- publish delta: the second observation (1,000 changed rows and pRuntimes);
- client fold: ``StatusView.apply`` of the delta, then ``Observed.model_validate``;
- the same with the loop's conditions in the rows: publishing, the lines, and a client
  reading them (all, then only the changed rows'), and a pass that changed nothing.

    .venv/bin/python benchmarks/control_10k.py [--workers 10000] [--changed 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tui"), str(ROOT / "benchmarks")]

from tui_10k import fresh_world, inventory, with_synced  # noqa: E402

from poolkeeper.cli._live import status_rows  # noqa: E402
from poolkeeper.control import ConditionReader  # noqa: E402
from poolkeeper.control.client import StatusView  # noqa: E402
from poolkeeper.control.server import StatusHub, _line  # noqa: E402
from poolkeeper.model.conditions import derive_conditions  # noqa: E402
from poolkeeper.model.observed import Observed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=1_000)
    args = parser.parse_args()
    desired = inventory(args.workers)
    first = fresh_world(desired)
    second = with_synced(first, desired, args.changed)
    hub = StatusHub()
    queue = hub.subscribe()

    def timed(name: str, step: object) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()  # type: ignore[operator]
        print(
            f"{name:<34} {(time.perf_counter() - wall) * 1000:7.0f} ms wall "
            f"{(time.process_time() - cpu) * 1000:7.0f} ms CPU"
        )
        return result

    timed(
        "publish first (rows + deltas)",
        lambda: hub.publish_observed(first.model_dump(mode="json"), status_rows(desired, first)),
    )
    queue.get_nowait()
    line = timed("snapshot line (encode + redact)", lambda: _line(hub.snapshot()))
    view = StatusView()
    timed("client: fold snapshot", lambda: view.apply(hub.snapshot()))
    timed(
        "publish delta",
        lambda: hub.publish_observed(second.model_dump(mode="json"), status_rows(desired, second)),
    )
    delta = queue.get_nowait()
    assert delta is not None
    delta_line = timed("delta line (encode + redact)", lambda: _line(delta))
    timed("client: fold delta", lambda: view.apply(delta))
    timed("client: Observed.model_validate", lambda: Observed.model_validate(view.observed))
    print(f"snapshot line: {len(line) / 1e6:.1f} MB; delta line: {len(delta_line) / 1e6:.2f} MB")  # type: ignore[arg-type]
    print(f"delta rows: {len(delta['rows'])}")

    # The same two passes with the loop's conditions in the rows (docs/api.md).
    start = datetime(2026, 1, 1, tzinfo=UTC)
    c1 = derive_conditions(desired, first, None, start)
    c2 = derive_conditions(desired, second, c1, start + timedelta(seconds=30))
    c3 = derive_conditions(desired, second, c2, start + timedelta(seconds=60))
    hub = StatusHub()
    queue = hub.subscribe()
    timed(
        "publish first, with conditions",
        lambda: hub.publish_observed(
            first.model_dump(mode="json"), status_rows(desired, first), c1
        ),
    )
    queue.get_nowait()
    line = timed("snapshot line, with conditions", lambda: _line(hub.snapshot()))
    view = StatusView()
    view.apply(hub.snapshot())
    reader = ConditionReader()
    timed("client: read all conditions", lambda: reader.read(view.rows))
    timed(
        "publish delta, with conditions",
        lambda: hub.publish_observed(
            second.model_dump(mode="json"), status_rows(desired, second), c2
        ),
    )
    delta = queue.get_nowait()
    assert delta is not None
    delta_line = timed("delta line, with conditions", lambda: _line(delta))
    view.apply(delta)
    timed("client: read the changed conditions", lambda: reader.read(view.rows))
    print(f"snapshot line: {len(line) / 1e6:.1f} MB; delta line: {len(delta_line) / 1e6:.2f} MB")  # type: ignore[arg-type]
    print(f"delta rows: {len(delta['rows'])}; conditions read again: {len(reader.changed)}")
    timed(
        "publish the same world again",
        lambda: hub.publish_observed(
            second.model_dump(mode="json"), status_rows(desired, second), c3
        ),
    )
    again = queue.get_nowait()
    assert again is not None
    print(f"rows sent when nothing changed: {len(again['rows'])}")


if __name__ == "__main__":
    main()
