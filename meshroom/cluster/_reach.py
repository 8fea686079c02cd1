"""Is the cluster's Redis there? Asked once, before a server starts.

`RedisExtension` connects in the server's startup hook, where a dead Redis
comes out as a long traceback from inside uvicorn's lifespan. Asking first
lets `meshroom serve` refuse with one line naming the URL and the cause.
"""

from __future__ import annotations

from ._lease import ClusterError

__all__ = ["check_redis"]


def check_redis(url: str, *, timeout: float = 5.0) -> None:
    """Connect to `url` and PING it (blocking).

    Raises:
        ClusterError: the URL is malformed, or Redis does not answer within `timeout`
            seconds (refused, unknown host, wrong password…).
    """
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
    except ValueError as error:
        raise ClusterError(f"not a usable Redis URL {url!r}: {error}") from error
    try:
        client.ping()
    except redis.RedisError as error:
        text = " ".join(str(error).split()) or type(error).__name__
        raise ClusterError(f"cannot reach Redis at {url}: {text}") from error
    finally:
        client.close()
