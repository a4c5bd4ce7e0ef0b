"""Entry point of the TUI front end, found by the CLI through an entry point."""

from __future__ import annotations


def run_tui(argv: list[str]) -> int:
    """Run the TUI. Not built yet: says so and fails, so no one mistakes it for working."""
    del argv
    print("poolkeeper tui: the TUI is not built yet (see the TUI issue)")
    return 1
