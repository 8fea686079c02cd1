"""Which automatic versions to keep: all recent ones, then fewer as they age.

Named versions are always kept: someone chose them. Automatic ones pile up (every session,
every agent run, every few minutes of editing), and the further back one looks the less
one needs each of them. So: every automatic version younger than `all_for`; then the
newest of each hour until `hourly_for`; then the newest of each day until `daily_for`;
none older (``daily_for=None`` keeps one a day forever). The newest version is never
deleted, whatever its age, so a document always keeps a way back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._model import Version

__all__ = ["Retention"]

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True)
class Retention:
    """How long automatic versions are kept (seconds; see the module docstring)."""

    all_for: float = DAY
    hourly_for: float = 7 * DAY
    daily_for: float | None = 90 * DAY

    def __post_init__(self) -> None:
        if self.all_for < 0 or self.hourly_for < self.all_for:
            raise ValueError("need 0 <= all_for <= hourly_for")
        if self.daily_for is not None and self.daily_for < self.hourly_for:
            raise ValueError("need hourly_for <= daily_for")

    @classmethod
    def parse(cls, text: str) -> Retention:
        """``"ALL,HOURLY,DAILY"`` in days (``1,7,90``; ``0`` as DAILY: keep forever).

        Raises:
            ValueError: not three numbers in order.
        """
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 3:
            raise ValueError(f"{text!r}: give three numbers of days, like 1,7,90")
        try:
            all_for, hourly, daily = (float(part) for part in parts)
        except ValueError:
            raise ValueError(f"{text!r}: give three numbers of days, like 1,7,90") from None
        return cls(all_for * DAY, hourly * DAY, daily * DAY if daily else None)

    def expired(self, versions: Sequence[Version], now: float) -> list[Version]:
        """The automatic versions of one document to delete now, oldest first."""
        if not versions:
            return []
        newest = max(versions, key=lambda version: (version.time, version.id))
        kept_buckets: set[tuple[str, int]] = set()
        doomed = []
        for version in sorted(versions, key=lambda v: (v.time, v.id), reverse=True):
            if not version.automatic or version is newest:
                continue
            age = now - version.time
            if age < self.all_for:
                continue
            if age < self.hourly_for:
                bucket = ("hour", int(version.time // HOUR))
            elif self.daily_for is None or age < self.daily_for:
                bucket = ("day", int(version.time // DAY))
            else:
                doomed.append(version)
                continue
            if bucket in kept_buckets:
                doomed.append(version)
            else:
                kept_buckets.add(bucket)
        return sorted(doomed, key=lambda v: (v.time, v.id))
