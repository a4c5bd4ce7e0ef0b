"""Shared pieces of the TUI tests: the example inventory and snapshot, and screen text."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from poolkeeper.inventory import load_inventory
from poolkeeper.model.desired import Desired
from poolkeeper.model.observed import Observed
from poolkeeper.observe.snapshot import load_snapshot

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventory"
SNAPSHOT = ROOT / "examples" / "observed-devnet-fresh.json"

_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')


def svg_text(svg: str) -> str:
    """The characters of a Textual SVG screenshot, line by line."""
    lines: dict[float, list[tuple[float, str]]] = {}
    for match in _TEXT.finditer(svg):
        x, y = float(match.group(1)), float(match.group(2))
        lines.setdefault(y, []).append((x, html.unescape(match.group(3)).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(v)) for _, v in sorted(lines.items()))


@pytest.fixture
def desired() -> Desired:
    return load_inventory(INVENTORY)


@pytest.fixture
def observed() -> Observed:
    return load_snapshot(SNAPSHOT)
