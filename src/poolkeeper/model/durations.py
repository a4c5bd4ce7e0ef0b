"""Durations as operators read them: ``11520 -> '3h 12m'``.

Shared by the planner (reasons) and the renderers (wait ETAs), so a cool-down reads
the same everywhere.
"""

from __future__ import annotations


def format_duration(seconds: int) -> str:
    """Two units at most, rounded down, never empty: ``'6d 23h'``, ``'3h 12m'``, ``'45s'``."""
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
