"""Named crash points, a test hook for proving that an apply can die anywhere.

Crash safety is a promise about what happens when the process is killed between two
steps (journaled but not sent; sent but not included; included but not journaled).
Tests cannot SIGKILL a process at such an instant from outside, so the product marks
the instants by name and, only when ``POOLKEEPER_TEST_CRASH_AT`` names one of them, kills
itself there with SIGKILL (no cleanup, no flush: exactly a crash). Unset (always, outside
tests) a crash point does nothing.

``POOLKEEPER_TEST_CRASH_AT=NAME`` crashes at the first time NAME is reached;
``NAME:N`` at the N-th time. Names: ``before_submit`` (journaled, not sent),
``after_submit`` (accepted by the node, inclusion not yet seen), ``before_settle``
(inclusion seen, journal not yet updated).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "POOLKEEPER_TEST_CRASH_AT"
NAMES = frozenset({"before_submit", "after_submit", "before_settle"})
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Die by SIGKILL here if the test hook asks for it; otherwise nothing."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
