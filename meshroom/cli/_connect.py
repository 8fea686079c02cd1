"""How a command reaches a room: the token it joins with, and a hard bound on the time it takes.

`--token` and `--dev` are the same two options wherever a command joins a room as
an agent; `room_token` turns them into the token to join with.

`--connect-timeout` promises a person an answer within that many seconds.
The client checks its own deadline only between attempts, after sleeping a
reconnect backoff that can reach 10 s, so a dead server used to be reported
up to one backoff late (18.7 s against 10 s). The commands wrap everything up
to "connected and synced" in one cancel scope with the promised deadline, and
lift it once there: from then on the work may take as long as it takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import typer

from ._errors import CliError

__all__ = ["DEV_OPTION", "TOKEN_OPTION", "connect_deadline", "dev_token", "room_token"]

TOKEN_OPTION = typer.Option(None, "--token", help="Access token for the room.")
DEV_OPTION = typer.Option(
    False,
    "--dev",
    help="Get a token from the server's /dev/token (a `meshroom serve --dev` server).",
)


@contextmanager
def connect_deadline(url: str, seconds: float, *, exit_code: int) -> Iterator[Callable[[], None]]:
    """Cancel the body if it has not called the yielded `connected()` within `seconds`.

    ```py
    with connect_deadline(url, 10, exit_code=3) as connected:
        async with RoomClient(url, room) as client:
            document = await client.open(path)
            connected()
            ...  # no deadline here
    ```

    Raises:
        CliError: the deadline passed before `connected()` ("cannot connect to URL
            within N s"), with `exit_code`.
    """
    scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)

    def connected() -> None:
        scope.deadline = math.inf

    with scope:
        yield connected
    if scope.cancelled_caught:
        raise CliError(f"cannot connect to {url} within {seconds:g} s", exit_code=exit_code)


def dev_token(url: str, room: str, name: str, *, kind: str = "person") -> str:
    """A token from the `/dev/token` route of a `meshroom serve --dev` server at `url`.

    Raises:
        CliError: the server is unreachable or does not serve dev tokens (exit 3).
    """
    import httpx

    http_url = "http" + url[2:] if url.startswith("ws") else url
    try:
        reply = httpx.get(
            f"{http_url.rstrip('/')}/dev/token",
            params={"room": room, "name": name, "kind": kind},
            timeout=10,
        )
    except httpx.HTTPError as error:
        raise CliError(f"cannot get a dev token from {http_url}: {error}", exit_code=3) from None
    if reply.status_code == 404:
        raise CliError(
            f"{http_url} serves no dev tokens: is it `meshroom serve --dev`?", exit_code=3
        )
    if reply.status_code != 200:
        raise CliError(
            f"{http_url}/dev/token answered {reply.status_code}: {reply.text.strip()}", exit_code=3
        )
    return str(reply.json()["token"])


def room_token(url: str, room: str, name: str, token: str | None, dev: bool) -> str | None:
    """The token an agent named `name` joins `room` with: `token`, or with `dev` a dev token.

    Raises:
        typer.BadParameter: both `token` and `dev` were given.
        CliError: `dev`, and the server gives no dev token (see `dev_token`).
    """
    if dev and token is not None:
        raise typer.BadParameter("give --token or --dev, not both", param_hint="--dev")
    return dev_token(url, room, name, kind="agent") if dev else token
