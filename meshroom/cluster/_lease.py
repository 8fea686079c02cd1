"""The storage writer lease: storage assumes one writer per document, so one per cluster.

A process given storage takes ``{prefix}:storage-writer`` (``SET NX PX``) at
startup and renews it while it runs; it is released at shutdown, and expires by
itself when its process dies, so a replacement can take over.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from .._exceptions import MeshroomError
from ._streams import writer_key

__all__ = [
    "ClusterError",
    "check_storage_writer_free",
    "keep_lease",
    "release_lease",
    "take_lease",
]


log = logging.getLogger("meshroom.cluster")


class ClusterError(MeshroomError):
    """The cluster refused this process (e.g. another process already writes storage)."""


def check_storage_writer_free(url: str, *, stream_prefix: str = "meshroom") -> None:
    """Fail early (before a server starts) when another process already writes storage.

    A lease left by a process that died is waited out (at most its time to live).

    `RedisExtension(storage_writer=True)` enforces the rule at startup; this check
    only gives a command line a clean message first.

    Raises:
        ClusterError: the lease is held by a live process.
        redis.exceptions.ConnectionError: Redis cannot be reached.
    """
    import time

    import redis

    key = writer_key(stream_prefix)
    client = redis.Redis.from_url(url)
    try:
        remaining = client.pttl(key)
        if remaining > 0:  # a live holder renews it before it expires; a dead one does not
            time.sleep(remaining / 1000 + 0.05)
            remaining = client.pttl(key)
    finally:
        client.close()
    if remaining > 0 or remaining == -1:
        raise ClusterError(
            "another process of this cluster already writes to storage: give --storage "
            "to one process only"
        )


# Release the writer lease only if it is still ours (it may have expired and been taken).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Renew the writer lease only if it is still ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


async def take_lease(client: Any, prefix: str, token: str, lease: float) -> None:
    """Take the lease; if held, wait out its time to live once (its holder may be dead).

    Raises:
        ClusterError: a live process holds it (it renewed it meanwhile).
    """
    key = writer_key(prefix)
    for attempt in range(2):
        if await client.set(key, token, nx=True, px=int(lease * 1000)):
            return
        remaining = await client.pttl(key)
        if attempt == 0 and remaining > 0:
            await anyio.sleep(remaining / 1000 + 0.05)
    raise ClusterError(
        f"another process of this cluster already writes to storage (lease {key!r}): "
        "give storage to one process only"
    )


async def keep_lease(client: Any, prefix: str, token: str, lease: float) -> None:
    """Renew the lease every third of its time to live, for as long as the process runs."""
    key = writer_key(prefix)
    while True:
        await anyio.sleep(lease / 3)
        try:
            renewed = await client.eval(RENEW, 1, key, token, int(lease * 1000))
        except Exception:
            log.exception("cluster: renewing the storage writer lease failed")
            continue
        if not renewed:
            log.error("cluster: the storage writer lease %r was lost", key)


async def release_lease(client: Any, prefix: str, token: str) -> None:
    """Give the lease back, if it is still ours."""
    await client.eval(RELEASE, 1, writer_key(prefix), token)
