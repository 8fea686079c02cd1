"""`meshroom doc export|import`: move documents in and out from the shell.

```sh
meshroom doc export team notes/plan --url ws://127.0.0.1:8765 > plan.md
meshroom doc import team notes/plan plan.md --url ws://127.0.0.1:8765
meshroom doc export team notes/plan --format json --storage ./rooms > plan.json
meshroom doc import team notes/plan plan.json --storage ./rooms
```

Two ways to reach a document, one of them per call:

- ``--url ws://HOST:PORT`` (and ``--token`` with auth) talks to a running
  server as a peer of the room: an import shows up at once in every editor;
- ``--storage URL`` (a folder or an fsspec URL, as `meshroom serve --storage`)
  reads and writes the stored snapshot and log directly, for when no server
  runs. Never while a server writes that storage: storage has one writer.
  What a server stopped while a remote store was down left in its local
  journal (``meshroom serve --journal``) counts as stored: it is read from
  ``--journal DIR``, by default the folder `meshroom serve` journals that
  storage URL in.

Formats: Markdown (`meshdoc.markdown`, Tiptap's block names) or meshdoc's JSON
(`MeshDocument.to_json`); an import guesses from the file name (``.json`` is
JSON) unless ``--format`` says. Importing into an existing document replaces
its whole content in one transaction. Exit status: 0 done, 1 no such room or
document, 2 bad options or input, 3 the server or storage failed; every error
is one line on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import typer

from .._exceptions import RoomNameError, StorageError
from . import app
from ._doc_io import (
    EXIT_BAD_INPUT,
    EXIT_UNREACHABLE,
    FORMATS,
    export_from_server,
    export_from_storage,
    import_to_server,
    import_to_storage,
    parse_content,
    render,
)
from ._errors import CliError, error_text

if TYPE_CHECKING:
    from ..storage import FsspecStorage, LocalJournal

doc_app = typer.Typer(
    name="doc",
    help="Export and import documents as Markdown or JSON (through a server or its storage).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(doc_app, name="doc")

_URL_HELP = "Running server, ws://host:port: work as a peer of the room."
_STORAGE_HELP = (
    "Storage folder or fsspec URL (as `meshroom serve --storage`), when no server runs on it."
)
_TIMEOUT_HELP = "Seconds to reach the server, retries included."
_JOURNAL_HELP = (
    "Local journal of the server that wrote --storage (as `meshroom serve --journal`); "
    "its edits not uploaded yet count as stored. Default for remote storage: the folder "
    "`meshroom serve` uses for that URL."
)


def _check_names(room: str, path: str) -> None:
    from ..protocol._names import validate_path, validate_room

    try:
        validate_room(room)
        validate_path(path)
    except RoomNameError as error:
        raise CliError(str(error), exit_code=EXIT_BAD_INPUT) from None


def _one_source(url: str | None, storage: str | None) -> None:
    if (url is None) == (storage is None):
        raise typer.BadParameter(
            "give --url (a running server) or --storage (no server running), one of them"
        )


def _format(value: str | None, file: Path | None = None) -> str:
    if value is None:
        return "json" if file is not None and file.suffix.lower() == ".json" else "markdown"
    fmt = {"md": "markdown"}.get(value.lower(), value.lower())
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not markdown or json", param_hint="--format")
    return fmt


def _open_storage(value: str) -> FsspecStorage:
    from ..storage import open_storage, storage_url

    try:
        return open_storage(storage_url(value))
    except StorageError as error:
        raise CliError(f"storage {value}: {error}", exit_code=EXIT_BAD_INPUT) from None


def _open_journal(storage: str, journal: Path | None) -> LocalJournal | None:
    """The journal `meshroom serve --storage STORAGE` would upload at its next start.

    Why: a server stopped while its remote store was down keeps the edits it could not
    upload there; reading (or replacing) the store without them would export an old
    document, or let the next start bring back content an import replaced.
    """
    from ..storage import LocalJournal, storage_url
    from ._serve import _default_journal, _is_remote

    if journal is not None:
        if not journal.is_dir():
            raise CliError(f"journal {journal}: no such folder", exit_code=EXIT_BAD_INPUT)
        return LocalJournal(journal)
    target = storage_url(storage)
    if not _is_remote(target):
        return None  # a local folder's log is on the disk: `serve` keeps no journal for it
    folder = Path(_default_journal(target))
    return LocalJournal(folder) if folder.is_dir() else None


def _run(work: object, *args: object) -> object:
    """Run `work(*args)` on an event loop; any failure but a `CliError` is exit 3, one line."""
    try:
        return anyio.run(work, *args)  # type: ignore[arg-type]
    except CliError:
        raise
    except RoomNameError as error:
        raise CliError(str(error), exit_code=EXIT_BAD_INPUT) from None
    except Exception as error:
        raise CliError(error_text(error), exit_code=EXIT_UNREACHABLE) from None


@doc_app.command("export")
def export(
    room: str = typer.Argument(..., help="Room name."),
    path: str = typer.Argument(..., help="Document path in the room, e.g. notes/plan."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown or json."),
    url: str | None = typer.Option(None, "--url", "-u", help=_URL_HELP),
    token: str | None = typer.Option(None, "--token", help="Access token (with --url)."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    journal: Path | None = typer.Option(None, "--journal", file_okay=False, help=_JOURNAL_HELP),
    output: Path | None = typer.Option(
        None, "--output", "-o", dir_okay=False, help="Write here instead of stdout."
    ),
    connect_timeout: float = typer.Option(10.0, "--connect-timeout", min=0.1, help=_TIMEOUT_HELP),
) -> None:
    """Print a document as Markdown or JSON; a document that does not exist is an error (exit 1)."""
    fmt = _format(fmt)
    _one_source(url, storage)
    _check_names(room, path)
    if url is not None:
        document = _run(export_from_server, url, token, room, path, connect_timeout)
    else:
        assert storage is not None
        opened = _open_storage(storage)
        document = _run(
            export_from_storage, opened, storage, room, path, _open_journal(storage, journal)
        )
    text = render(document, fmt)  # type: ignore[arg-type]
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}") from None


@doc_app.command("import")
def import_(
    room: str = typer.Argument(..., help="Room name."),
    path: str = typer.Argument(..., help="Document path in the room, e.g. notes/plan."),
    file: Path = typer.Argument(..., help="Markdown or JSON file; - reads stdin."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="markdown or json (default: json for a .json file)."
    ),
    url: str | None = typer.Option(None, "--url", "-u", help=_URL_HELP),
    token: str | None = typer.Option(None, "--token", help="Access token (with --url)."),
    storage: str | None = typer.Option(None, "--storage", help=_STORAGE_HELP),
    journal: Path | None = typer.Option(None, "--journal", file_okay=False, help=_JOURNAL_HELP),
    connect_timeout: float = typer.Option(10.0, "--connect-timeout", min=0.1, help=_TIMEOUT_HELP),
) -> None:
    """Write a file into a document, replacing all its content in one transaction.

    The document is created if it does not exist. With --url, everyone in the room
    sees the new content at once, as one change.
    """
    import sys

    fmt = _format(fmt, file)
    _one_source(url, storage)
    _check_names(room, path)
    source = "stdin" if str(file) == "-" else str(file)
    try:
        text = sys.stdin.read() if source == "stdin" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise CliError(f"cannot read {source}: {reason}", exit_code=EXIT_BAD_INPUT) from None
    content = parse_content(text, fmt, source)
    if url is not None:
        _run(import_to_server, url, token, room, path, content, connect_timeout)
    else:
        assert storage is not None
        opened = _open_storage(storage)
        _run(import_to_storage, opened, room, path, content, _open_journal(storage, journal))
