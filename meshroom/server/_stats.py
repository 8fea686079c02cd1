"""`ServerStats`: plain counters the server keeps on its hot path, for a metrics exporter.

The server core imports no metrics library: it counts in integers and in fixed-bucket
histograms of its own (`Histogram`), and an exporter (``meshroom.metrics``) reads them
when it is scraped. Counting costs an addition or two per update, and only when an
extension asks for it (``uses_stats = True``): without one, documents get no stats
object and the relay path only tests for None.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["LATENCY_BUCKETS", "Histogram", "ServerStats"]

#: Upper bounds, in seconds, of latency buckets: from 50 µs (an in-memory relay) to 5 s
#: (a storage write that waits out a retry).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Histogram:
    """Counts of observations per bucket (not cumulative), their sum and their number.

    ```py
    histogram = Histogram((0.1, 1.0))
    histogram.observe(0.05)
    histogram.observe(0.5, 2)
    assert histogram.cumulative() == [(0.1, 1), (1.0, 3), (float("inf"), 3)]
    ```
    """

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        #: One count per bound, plus the last for values above every bound.
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        """Record `value` `times` times (a batch of updates relayed together)."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with +Inf: Prometheus's form."""
        running = 0
        result = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            result.append((bound, running))
        return result


class ServerStats:
    """What the server counted since it started (read by a metrics exporter)."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "journal_failures",
        "journal_seconds",
        "relay_seconds",
        "updates_in",
        "updates_out",
    )

    def __init__(self) -> None:
        #: Document updates accepted from peers, and their bytes.
        self.updates_in = 0
        self.bytes_in = 0
        #: Update messages queued to sessions (one per receiving session), and their bytes.
        self.updates_out = 0
        self.bytes_out = 0
        #: From an update's arrival to its relay to every other session (a held update
        #: waits for its journal write).
        self.relay_seconds = Histogram()
        #: Journal writes (updates made durable before they are relayed), and failures.
        self.journal_seconds = Histogram()
        self.journal_failures = 0
