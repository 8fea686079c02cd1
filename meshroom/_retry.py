"""`Backoff`: the one retry policy, exponential, capped, with jitter.

Every loop that tries again uses it: the client reconnecting, a document's journal
writing held updates, the server storing a room, storage writing logs and snapshots (the
model client retries through the openai SDK's own policy). A server restart drops every
socket at once; if all clients came back after the same delay they would all knock at the
same instant. Jitter spreads them, the cap keeps a loop from sleeping minutes after a
long outage.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each reconnect attempt.

    Attempt `n` (from 0) waits `min(maximum, initial * factor**n)`, multiplied by a
    random factor in `[1 - jitter, 1]`.

    ```py
    delays = Backoff(initial=0.1, factor=2.0, maximum=1.0, jitter=0.0).delays()
    assert [next(delays) for _ in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    ```

    Args:
        initial: First delay in seconds (default 0.1 s: a dropped socket on a healthy
            server usually reconnects at once).
        factor: Growth per failed attempt (default 2).
        maximum: Cap in seconds (default 10 s: a long outage is noticed within 10 s of
            its end).
        jitter: Fraction of each delay that is random (default 0.5).

    Raises:
        ValueError: a negative delay, a factor below 1 or a jitter outside [0, 1].
    """

    initial: float = 0.1
    factor: float = 2.0
    maximum: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError(f"backoff delays must be >= 0, got {self.initial}, {self.maximum}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, failures: int) -> float:
        """The delay after `failures` failed attempts in a row (1 for the first)."""
        capped = min(self.initial * self.factor ** max(failures - 1, 0), self.maximum)
        return capped * (1 - self.jitter * random.random())

    def delays(self) -> Iterator[float]:
        """Yield the delay before each successive attempt, forever."""
        delay = self.initial
        while True:
            capped = min(delay, self.maximum)
            yield capped * (1 - self.jitter * random.random())
            delay = capped * self.factor
