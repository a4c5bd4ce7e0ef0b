"""Observed-state snapshots: an ``Observed`` saved as JSON, read back for offline planning.

A snapshot is exactly ``Observed.model_dump_json()``. It lets ``plan`` run without a
chain (reviews, tests, the demo before a devnet exists) through the same planner.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from poolkeeper.errors import SnapshotError
from poolkeeper.model.observed import Observed

SUPPORTED_FORMAT_VERSION = 1


def parse_snapshot(text: str, origin: str = "snapshot") -> Observed:
    """Validate snapshot JSON text; ``SnapshotError`` names ``origin`` and every problem."""
    try:
        observed = Observed.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"  {where}: {error['msg']}")
        shown = problems[:20]
        if len(problems) > len(shown):
            shown.append(f"  ... and {len(problems) - len(shown)} more")
        raise SnapshotError(
            f"{origin} is not a valid observed-state snapshot "
            "(the JSON form of Observed):\n" + "\n".join(shown)
        ) from None
    if observed.format_version != SUPPORTED_FORMAT_VERSION:
        raise SnapshotError(
            f"{origin} has format_version {observed.format_version}; this poolkeeper reads "
            f"{SUPPORTED_FORMAT_VERSION}"
        )
    return observed


def load_snapshot(path: str | Path) -> Observed:
    """Read and validate a snapshot file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"snapshot {path} is not UTF-8 text") from None
    return parse_snapshot(text, str(path))


def dump_snapshot(observed: Observed) -> str:
    """The snapshot text of ``observed``."""
    return observed.model_dump_json(indent=2) + "\n"
