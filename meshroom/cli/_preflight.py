"""What `meshroom serve` checks before it starts, so a server never half-starts.

Each check turns a failure that would otherwise surface late (a snapshot that
cannot be written minutes after clients were told their edits are safe) or
loud (a traceback from inside uvicorn's lifespan) into one `CliError` line:

- the address can be listened on (not taken, a host that resolves);
- the storage URL opens and stores: a marker is written, read and deleted;
- Redis answers, and no other process of the cluster writes storage already.

A refused option value exits 2; an environment that refuses (a folder that
cannot be written, a Redis that is down) exits 1.
"""

from __future__ import annotations

import socket

import typer

from .._exceptions import StorageError
from ._errors import CliError

__all__ = ["check_listen", "check_redis_option", "check_storage_option"]

EXIT_BAD_VALUE = 2
EXIT_UNAVAILABLE = 1


def check_listen(host: str, port: int) -> None:
    """Bind `host:port` once, as uvicorn will (address reuse on), and let it go.

    Raises:
        CliError: the host does not resolve, or the port is taken or not allowed.
    """
    where = f"cannot listen on {host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise CliError(f"{where}: {error.strerror}", exit_code=EXIT_BAD_VALUE) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            raise CliError(f"{where}: {reason}", exit_code=EXIT_UNAVAILABLE) from None


def check_storage_option(value: str) -> None:
    """Open the `--storage` value and probe it (write, read back, delete a marker).

    Raises:
        CliError: ``storage URL: why`` (exit 2 when the URL cannot be opened at all,
            1 when the storage is there but does not store).
    """
    from ..storage import open_storage, probe_storage, storage_url

    url = storage_url(value)
    try:
        open_storage(url)
    except StorageError as error:
        raise CliError(f"storage {value}: {error}", exit_code=EXIT_BAD_VALUE) from None
    try:
        probe_storage(url)
    except StorageError as error:
        raise CliError(f"storage {value}: {error}", exit_code=EXIT_UNAVAILABLE) from None


def check_redis_option(url: str) -> None:
    """Ping the `--redis` URL.

    Raises:
        typer.BadParameter: not a Redis URL (a usage error, exit 2).
        CliError: Redis unreachable (exit 1).
    """
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise typer.BadParameter(f"{url} is not a redis://host:port/db URL", param_hint="--redis")
    from ..cluster import ClusterError, check_redis

    try:
        check_redis(url)
    except ClusterError as error:
        raise CliError(f"redis: {error}", exit_code=EXIT_UNAVAILABLE) from None
