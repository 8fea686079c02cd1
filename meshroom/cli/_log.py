"""`meshroom log ROOM`: read a room's activity log straight from the server's storage.

```sh
meshroom log team --storage ./rooms               # the latest session, as a table
meshroom log team --storage ./rooms --sessions    # which sessions were logged
meshroom log team --storage ./rooms --session 20260105T101500123Z-3f9a1c --json
meshroom log team --storage ./rooms --follow      # and new events as they come
```

It reads the storage, so it works whether or not a server runs on it (the server
writes each event within a fraction of a second). Exit status 2 for a bad option or
an unknown session, 3 when the storage cannot be read.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import anyio
import typer

from . import app
from ._errors import CliError, error_text

__all__ = ["describe", "log"]

EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

#: The fields shown as "who" for each event type (the rest go to "details").
_WHO = ("participant", "agent", "from", "client")


def describe(event: dict[str, Any]) -> tuple[str, str, str, str]:
    """(time, type, who, details) of one event, for the table."""
    moment = event.get("time")
    when = (
        datetime.fromtimestamp(moment).strftime("%H:%M:%S.%f")[:-3]
        if isinstance(moment, (int, float))
        else ""
    )
    who = next((str(event[key]) for key in _WHO if event.get(key) is not None), "")
    if event.get("name") and event.get("participant"):
        who = f"{event['name']} ({event['participant']}, {event.get('kind', '')})"
    shown = {"type", "time", "room", "session", "name", "kind", *_WHO}
    details = " ".join(
        f"{key}={json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}"
        for key, value in event.items()
        if key not in shown and value is not None
    )
    return when, str(event.get("type", "")), who, details


@app.command("log")
def log(
    room: str = typer.Argument(..., help="The room whose activity to show."),
    storage: str = typer.Option(
        ..., "--storage", help="The server's storage: a folder or fsspec URL (as serve --storage)."
    ),
    session: str | None = typer.Option(
        None, "--session", help="Which session (default: the latest); see --sessions."
    ),
    sessions: bool = typer.Option(False, "--sessions", help="List the room's sessions instead."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new events as they are logged."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Show a room's activity: who joined, what was saved, what agents were asked and did."""
    from ..activity import ActivityLog
    from ..protocol._names import validate_room
    from ..storage import open_storage, storage_url

    try:
        validate_room(room)
        reader = ActivityLog(open_storage(storage_url(storage)))
    except Exception as error:
        raise CliError(error_text(error), exit_code=EXIT_BAD_INPUT) from None

    async def show() -> None:
        known = await reader.sessions(room)
        if sessions:
            for name in known:
                typer.echo(name)
            return
        if session is not None and session not in known:
            raise CliError(f"room {room!r} has no session {session!r}", exit_code=EXIT_BAD_INPUT)
        if follow:
            async for event in reader.follow(room, session):
                _print_line(event, as_json)
            return
        events = await reader.events(room, session)
        if as_json:
            for event in events:
                _print_line(event, True)
            return
        _print_table(room, session or (known[-1] if known else None), events)

    try:
        anyio.run(show)
    except (CliError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise CliError(error_text(error), exit_code=EXIT_UNREACHABLE) from None


def _print_line(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(event, ensure_ascii=False))
    else:
        typer.echo("  ".join(part for part in describe(event) if part))


def _print_table(room: str, session: str | None, events: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    if session is None:
        typer.echo(f"no activity logged for room {room!r}")
        return
    table = Table(title=f"{room} · session {session} · {len(events)} events", title_justify="left")
    for column in ("time", "event", "who", "details"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(*describe(event))
    Console(soft_wrap=False).print(table)
