"""`meshroom version list|show|diff|restore|save ROOM PATH`: a document's versions.

```sh
meshroom version list team notes/plan --url http://127.0.0.1:8765 --token "$ADMIN"
meshroom version save team notes/plan --name "before review" --storage ./rooms
meshroom version diff team notes/plan latest --url http://127.0.0.1:8765 --token "$ADMIN"
meshroom version show team notes/plan 20260105T1015 --format markdown --storage ./rooms
meshroom version restore team notes/plan "before review" --storage ./rooms
```

Two ways to reach the versions, one of them per call, as for ``meshroom doc``:

- ``--url`` (``http://`` or ``ws://``) and ``--token`` with the room's admin grant: through
  a running server's HTTP endpoints. "Now" is the live document, and a restore is an
  edit every open editor receives at once;
- ``--storage URL`` (as `meshroom serve --storage`) reads and writes the storage directly,
  for when no server runs on it (storage has one writer): a restore is appended to the
  stored document's log.

A version is named by its id, a unique prefix of one, its name, or ``latest``; ``diff``
compares with ``now`` unless given a second version. Exit status: 0 done, 1 no such
version, 2 bad options, 3 the server or storage failed; errors are one line on stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import anyio
import typer

from . import app
from ._errors import CliError, error_text

__all__ = ["version_app"]

EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

version_app = typer.Typer(
    name="version",
    help="List, show, compare, restore and save versions of a document.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(version_app, name="version")

_URL = typer.Option(None, "--url", help="Running server (http://host:port or ws://host:port).")
_TOKEN = typer.Option(
    None, "--token", envvar="MESHROOM_TOKEN", help="Token with the room's admin grant (--url)."
)
_STORAGE = typer.Option(
    None, "--storage", help="Storage folder or fsspec URL, when no server runs on it."
)
_ROOM = typer.Argument(..., help="The room.")
_PATH = typer.Argument(..., help="The document's path.")
_REF = typer.Argument(..., help="A version: id, unique id prefix, name, or 'latest'.")


def _source(url: str | None, token: str | None, storage: str | None) -> Any:
    """The `Versions` (storage) or `VersionsClient` (server) the command works on."""
    if (url is None) == (storage is None):
        raise typer.BadParameter(
            "give --url (a running server) or --storage (no server running), one of them"
        )
    if url is not None:
        from ..versions import VersionsClient

        return VersionsClient(url, token=token)
    from ..storage import open_storage, storage_url
    from ..versions import Versions

    assert storage is not None
    try:
        return Versions(open_storage(storage_url(storage)))
    except Exception as error:
        message = f"storage {storage}: {error_text(error)}"
        raise CliError(message, exit_code=EXIT_BAD_INPUT) from None


def _run(room: str, path: str, work: Any) -> None:
    from .._exceptions import AuthenticationError, RoomNameError
    from ..protocol._names import validate_path, validate_room
    from ..versions import VersionNotFound

    try:
        validate_room(room)
        validate_path(path)
    except RoomNameError as error:
        raise CliError(str(error), exit_code=EXIT_BAD_INPUT) from None
    try:
        anyio.run(work)
    except (CliError, KeyboardInterrupt):
        raise
    except VersionNotFound as error:
        raise CliError(str(error), exit_code=EXIT_NOT_FOUND) from None
    except AuthenticationError as error:
        raise CliError(f"refused: {error.reason}", exit_code=EXIT_UNREACHABLE) from None
    except Exception as error:
        raise CliError(error_text(error), exit_code=EXIT_UNREACHABLE) from None


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")


@version_app.command("list")
def list_versions(
    room: str = _ROOM,
    path: str = _PATH,
    url: str | None = _URL,
    token: str | None = _TOKEN,
    storage: str | None = _STORAGE,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List the document's versions, oldest first."""
    source = _source(url, token, storage)

    async def work() -> None:
        found = await source.list(room, path)
        if as_json:
            for version in found:
                typer.echo(json.dumps(version.to_json(), ensure_ascii=False))
            return
        if not found:
            typer.echo(f"{room}/{path} has no versions")
            return
        for version in found:
            author = f"  by {version.author}" if version.author else ""
            typer.echo(
                f"{version.id}  {_when(version.time)}  {version.reason:<14}  "
                f"{version.bytes:>9} B  {version.name}{author}"
            )

    _run(room, path, work)


@version_app.command("show")
def show(
    room: str = _ROOM,
    path: str = _PATH,
    ref: str = _REF,
    url: str | None = _URL,
    token: str | None = _TOKEN,
    storage: str | None = _STORAGE,
    fmt: str = typer.Option(
        "markdown", "--format", help="markdown, json (metadata and document) or yjs (bytes)."
    ),
) -> None:
    """Print a version of the document (Markdown by default)."""
    if fmt not in ("markdown", "md", "json", "yjs"):
        raise typer.BadParameter(f"{fmt!r} is not markdown, json or yjs", param_hint="--format")
    source = _source(url, token, storage)

    async def work() -> None:
        if fmt in ("markdown", "md"):
            typer.echo(await source.markdown(room, path, ref), nl=False)
        elif fmt == "yjs":
            _, state = await source.read(room, path, ref)
            sys.stdout.buffer.write(state)
            sys.stdout.buffer.flush()
        else:
            version = await source.get(room, path, ref)
            if hasattr(source, "document_json"):
                document = await source.document_json(room, path, version.id)
            else:
                document = (await source.document(room, path, version.id)).to_json()
            typer.echo(json.dumps({**version.to_json(), "document": document}, ensure_ascii=False))

    _run(room, path, work)


@version_app.command("diff")
def diff(
    room: str = _ROOM,
    path: str = _PATH,
    ref: str = _REF,
    to: str = typer.Argument("now", help="The other version, or 'now' (default)."),
    url: str | None = _URL,
    token: str | None = _TOKEN,
    storage: str | None = _STORAGE,
    as_json: bool = typer.Option(False, "--json", help="The structural diff and the Markdown."),
) -> None:
    """Show what changed from a version to another one (or to the document now)."""
    source = _source(url, token, storage)

    async def work() -> None:
        changes = await source.diff(room, path, ref, to)
        if as_json:
            typer.echo(json.dumps(changes.to_json(), ensure_ascii=False))
            return
        counts = ", ".join(f"{count} {kind}" for kind, count in changes.counts().items() if count)
        typer.echo(f"# elements: {counts or 'no change'}")
        for change in changes.changes:
            detail = ""
            if change.kind == "attributes":
                detail = " " + ", ".join(
                    f"{name}: {old!r} -> {new!r}" for name, (old, new) in change.attributes.items()
                )
            elif change.kind == "text":
                detail = f" {change.before!r} -> {change.after!r}"
            typer.echo(f"#   {change.kind:<10} <{change.tag}> {change.id}{detail}")
        typer.echo(changes.markdown, nl=False)

    _run(room, path, work)


@version_app.command("restore")
def restore(
    room: str = _ROOM,
    path: str = _PATH,
    ref: str = _REF,
    url: str | None = _URL,
    token: str | None = _TOKEN,
    storage: str | None = _STORAGE,
) -> None:
    """Bring the document back to a version (a forward edit; undo it by restoring the
    'before' version it prints)."""
    source = _source(url, token, storage)

    async def work() -> None:
        restored = await source.restore(room, path, ref, author="meshroom version")
        typer.echo(f"restored {restored.version.id} ({restored.version.name})")
        typer.echo(f"before: {restored.before.id} (restore it to undo this)")

    _run(room, path, work)


@version_app.command("save")
def save(
    room: str = _ROOM,
    path: str = _PATH,
    name: str | None = typer.Option(None, "--name", help="What to call the version."),
    url: str | None = _URL,
    token: str | None = _TOKEN,
    storage: str | None = _STORAGE,
) -> None:
    """Save the document as it is now as a named version; print its id."""
    source = _source(url, token, storage)

    async def work() -> None:
        version = await source.save(room, path, name, author="meshroom version")
        typer.echo(version.id)

    _run(room, path, work)
