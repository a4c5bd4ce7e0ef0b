"""What the caller allows a plan to do, beyond what the inventory declares.

The inventory says where the pools should be; the policy says how far one planning
pass may go on its own: pruning workers that vanished from the inventory or lowering
a stake (both destructive), top-up transfers, key derivation, and ``--target`` limits.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_KINDS = ("pool", "worker")


class TargetError(ValueError):
    """A ``--target`` value that is not ``pool/<name-or-pid>`` or ``worker/<name>``."""


def check_target(text: str) -> str:
    """Return ``text`` if it is a valid target, else raise ``TargetError`` saying what is right."""
    kind, sep, name = text.partition("/")
    if not sep or kind not in TARGET_KINDS or not name:
        raise TargetError(
            f"--target {text!r} is not understood (write pool/<name-or-pid> or worker/<name>)"
        )
    return text


@dataclass(frozen=True)
class PlanPolicy:
    """Permissions and limits of one planning pass."""

    prune: bool = False
    """Allow destructive steps the inventory does not declare: workers on chain in our
    pools but missing from the inventory are stopped, reclaimed and removed, and a
    lowered stake stops the worker (cool-down, reclaim, start with the new stake)."""
    targets: tuple[str, ...] = ()
    """``pool/<name-or-pid>`` or ``worker/<name>``; empty means everything."""
    top_up: bool = True
    """Allow top-up transfers where an account declares a top-up policy."""
    derive: bool = True
    """Allow deriving the addresses of accounts that have a derivation label only."""

    def __post_init__(self) -> None:
        for target in self.targets:
            check_target(target)
