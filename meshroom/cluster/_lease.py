"""Per-document writer leases: which process of a cluster writes a document to storage.

Storage assumes one writer per document (two processes appending to and compacting
the same log would drop each other's records), but any process with storage may be
that writer, and each document has its own. Two keys in Redis say who:

- ``{prefix}:writer:{doc}`` holds the token of the process writing the document,
  with a time to live (``SET NX PX``): the lease. Its holder renews it every third
  of its lifetime; a dead holder stops renewing and the lease expires.
- ``{prefix}:writers`` is a sorted set of documents that have or need a writer, each
  scored with the time (Redis clock, ms) its lease runs until. A process serving a
  document with no writer adds it with score 0 (``ZADD NX``: never touching a live
  writer's entry), which is "needs a writer now". An expired lease leaves a past
  score behind, which says the same: so a dead writer's documents are found by the
  same query as new ones, and taken over without anybody editing them again.

Writers poll the set for due entries and claim them with `CLAIM_DUE`, atomically.
Everything runs on the Redis server's clock, so the processes' clocks never matter.
"""

from __future__ import annotations

import logging
from typing import Any

from .._exceptions import MeshroomError
from ._streams import lease_key, writers_key

__all__ = ["ClusterError", "Leases"]

log = logging.getLogger("meshroom.cluster")


class ClusterError(MeshroomError):
    """The cluster refused this process (e.g. its Redis cannot be reached)."""


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: writers set. ARGV: token, lease ms, most to claim, lease key prefix.
CLAIM_DUE = (
    _NOW
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, member in ipairs(due) do
  if redis.call('SET', ARGV[4] .. member, ARGV[1], 'NX', 'PX', ARGV[2]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
    table.insert(claimed, member)
  end
end
return claimed
"""
)

# KEYS: writers set. ARGV: token, lease ms, lease key prefix, members...
# Renews (or takes, when free) each lease; returns the members another process holds.
RENEW = (
    _NOW
    + """
local lost = {}
for index = 4, #ARGV do
  local member = ARGV[index]
  local key = ARGV[3] .. member
  local holder = redis.call('GET', key)
  if holder == ARGV[1] or (not holder and redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2])) then
    redis.call('PEXPIRE', key, ARGV[2])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
  else
    table.insert(lost, member)
  end
end
return lost
"""
)

# KEYS: lease, writers set. ARGV: token, member.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class Leases:
    """This process's side of the writer leases (one token for all its documents)."""

    def __init__(self, client: Any, prefix: str, token: str, lease: float) -> None:
        self._client = client
        self._prefix = prefix
        self._writers = writers_key(prefix)
        self._lease_prefix = lease_key(prefix, "")
        self.token = token
        self.lease_ms = max(1, int(lease * 1000))
        #: Members whose lease this process holds (renewed by `renew`).
        self.held: set[str] = set()

    async def acquire(self, member: str) -> bool:
        """Take `member`'s lease if it is free (or already ours); False if another holds it."""
        lost = await self._client.eval(
            RENEW, 1, self._writers, self.token, self.lease_ms, self._lease_prefix, member
        )
        if lost:
            return False
        self.held.add(member)
        return True

    async def claim_due(self, most: int = 32) -> list[str]:
        """Claim documents that need a writer (new ones, and those of dead writers)."""
        claimed = await self._client.eval(
            CLAIM_DUE, 1, self._writers, self.token, self.lease_ms, most, self._lease_prefix
        )
        members = [item.decode() if isinstance(item, bytes) else item for item in claimed]
        self.held.update(members)
        return members

    async def renew(self) -> list[str]:
        """Renew every lease held; returns (and forgets) those another process took."""
        if not self.held:
            return []
        members = sorted(self.held)
        lost = await self._client.eval(
            RENEW, 1, self._writers, self.token, self.lease_ms, self._lease_prefix, *members
        )
        names = [item.decode() if isinstance(item, bytes) else item for item in lost]
        self.held.difference_update(names)
        return names

    async def release(self, member: str) -> None:
        """Give `member`'s lease back (if still ours): the next writer need not wait it out."""
        self.held.discard(member)
        await self._client.eval(
            RELEASE, 2, lease_key(self._prefix, member), self._writers, self.token, member
        )

    def announce_on(self, pipe: Any, member: str) -> None:
        """Queue on `pipe` "`member` needs a writer" (a no-op while it has one)."""
        pipe.zadd(self._writers, {member: 0}, nx=True)

    async def announce(self, member: str) -> None:
        """Say "`member` needs a writer" now (a no-op while it has one)."""
        await self._client.zadd(self._writers, {member: 0}, nx=True)

    async def holder(self, member: str) -> str | None:
        """The token of the process writing `member` now (None: nobody)."""
        value = await self._client.get(lease_key(self._prefix, member))
        return value.decode() if isinstance(value, bytes) else value
