"""One retry-delay policy for every loop that retries: exponential steps, jitter, cap, reset.

The reconcile loop, each relay, each external relay process and the head follower all
wait before retrying after a failure. They used to compute the delay themselves, each
with its own copy of "step through a sequence, multiply by a random factor"; a change
to one (a cap, a reset rule) never reached the others. ``Backoff`` is that policy once,
with the random source passed in so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

DEFAULT_DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
DEFAULT_JITTER = 0.2
"""Each delay is multiplied by a factor drawn from ``[1 - jitter, 1 + jitter]``."""


class Backoff:
    """Delays along ``delays`` (the last one repeats: it is the cap), jittered.

    ``next_delay()`` counts a failure and returns how long to wait before the next try;
    ``reset()`` after a success starts again from the first delay.
    """

    def __init__(
        self,
        delays: Sequence[float] = DEFAULT_DELAYS,
        *,
        jitter: float = DEFAULT_JITTER,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be within [0, 1)")
        self._jitter = jitter
        self._uniform = uniform
        self.failures = 0
        """Failures since the last ``reset()``."""
        self.delays = tuple(delays)

    @property
    def delays(self) -> tuple[float, ...]:
        return self._delays

    @delays.setter
    def delays(self, delays: Sequence[float]) -> None:
        """A new sequence (a reloaded setting) keeps the failure count."""
        steps = tuple(float(d) for d in delays)
        if not steps or any(d < 0 for d in steps):
            raise ValueError("backoff delays must be a non-empty sequence of seconds >= 0")
        self._delays = steps

    @property
    def cap(self) -> float:
        """The longest delay before jitter."""
        return max(self._delays)

    def peek(self) -> float:
        """The delay the next failure would get, before jitter."""
        return self._delays[min(self.failures, len(self._delays) - 1)]

    def next_delay(self) -> float:
        """Count a failure; the (jittered) seconds to wait before trying again."""
        base = self.peek()
        self.failures += 1
        if self._jitter == 0 or base == 0:
            return base
        return base * self._uniform(1 - self._jitter, 1 + self._jitter)

    def reset(self) -> None:
        """A success: the next failure waits the first delay again."""
        self.failures = 0
