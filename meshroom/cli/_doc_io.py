"""The work behind `meshroom doc`: formats, content replacement, and the two ways in.

A document reaches the shell either through a running server (as a
`RoomClient` peer, so every connected editor sees an import at once) or, when
no server runs, straight through the storage it keeps (snapshot + log, as the
server would load them, plus what the local journal of a server that stopped
while a remote store was down still holds: the next start uploads it, so it is
part of the document already). Either way an import replaces the document's content
in one transaction: peers see one change, and an undo step covers it whole.

Documents are opened untyped (the server does not know their schema either):
Markdown comes in as the Tiptap blocks `meshdoc.markdown` writes, JSON in the
``{root_tag: {...}}`` shape of `MeshDocument.to_json`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._connect import connect_deadline
from ._errors import CliError

if TYPE_CHECKING:
    from meshdoc import MeshDocument

    from ..storage import FsspecStorage, LocalJournal

__all__ = [
    "FORMATS",
    "export_from_server",
    "export_from_storage",
    "import_to_server",
    "import_to_storage",
    "parse_content",
    "render",
    "replace_content",
]

FORMATS = ("markdown", "json")
EXIT_MISSING = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
#: The state vector of a document nobody ever wrote to.
_EMPTY_STATE = b"\x00"


def render(document: MeshDocument, fmt: str) -> str:
    """The document as Markdown, or as indented JSON (`to_json`), ending in a newline."""
    if fmt == "json":
        return json.dumps(document.to_json(), ensure_ascii=False, indent=2) + "\n"
    from meshdoc.markdown import to_markdown

    return to_markdown(document)


def parse_content(text: str, fmt: str, source: str) -> MeshDocument:
    """A new document holding `text` (Markdown or document JSON), checked before any write.

    Raises:
        CliError: the JSON does not parse or is not a document (exit 2).
    """
    from meshdoc import MeshdocError, MeshDocument
    from meshdoc.markdown import from_markdown

    if fmt == "markdown":
        return from_markdown(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{source} is not JSON: {error}", exit_code=EXIT_BAD_INPUT) from None
    try:
        return MeshDocument.from_json(None, data)
    except (MeshdocError, TypeError, ValueError) as error:
        raise CliError(
            f"{source} is not a document's JSON ({{root_tag: {{...}}}}): {error}",
            exit_code=EXIT_BAD_INPUT,
        ) from None


def replace_content(target: MeshDocument, content: MeshDocument) -> None:
    """Make `target` hold what `content` holds (root attributes, children), in one transaction."""
    ((_, body),) = content.to_json().items()
    children: list[dict[str, Any]] = body.get("children") or []
    with target.transaction():
        del target.fragment.children[0 : len(target.fragment.children)]
        attributes = target.root_attribute_map
        for key in list(attributes.keys()):
            del attributes[key]
        for key, value in content.root_attribute_map.items():
            attributes[key] = value  # the root tag of an untyped document included
        for index, child in enumerate(children):
            target.root.insert_json_at(index, child)


def _is_unwritten(document: MeshDocument) -> bool:
    return document.get_state() == _EMPTY_STATE


# -- through a running server ---------------------------------------------------------------


async def export_from_server(
    url: str, token: str | None, room: str, path: str, timeout: float
) -> MeshDocument:
    """The document as the server holds it now.

    Raises:
        CliError: the server cannot be reached or refused us (exit 3), or it has
            no such document, i.e. nobody ever wrote to it (exit 1).
    """
    from ..client._client import RoomClient

    with connect_deadline(url, timeout, exit_code=EXIT_UNREACHABLE) as connected:
        async with RoomClient(
            url, room, name="meshroom doc", token=token, connect_timeout=timeout
        ) as client:
            document = await client.open(path)
            connected()
    if _is_unwritten(document):
        raise CliError(
            f"room {room!r} has no document {path!r} on {url} (nothing was ever written there)",
            exit_code=EXIT_MISSING,
        )
    return document


async def import_to_server(
    url: str, token: str | None, room: str, path: str, content: MeshDocument, timeout: float
) -> None:
    """Replace the document's content on the server; every connected peer sees one change.

    Leaving the room flushes the update before the socket closes.

    Raises:
        CliError: the server cannot be reached or refused us (exit 3).
    """
    from ..client._client import RoomClient

    with connect_deadline(url, timeout, exit_code=EXIT_UNREACHABLE) as connected:
        async with RoomClient(
            url, room, name="meshroom doc", token=token, connect_timeout=timeout
        ) as client:
            document = await client.open(path)
            connected()
            replace_content(document, content)


# -- straight through storage ---------------------------------------------------------------


async def _load(
    storage: FsspecStorage, room: str, path: str, journaled: list[bytes]
) -> MeshDocument:
    """Snapshot, log, then the journaled updates: what the next server start would load."""
    from meshdoc import MeshDocument

    from ..storage._tracked import apply_all

    document = MeshDocument(None)
    snapshot = await storage.read_snapshot(room, path)
    records = await storage.read_log(room, path)
    apply_all(document.doc, snapshot, records + journaled, f"{room}/{path}")
    return document


async def _journaled(journal: LocalJournal | None, room: str, path: str) -> list[bytes]:
    return [] if journal is None else await journal.read(room, path)


async def export_from_storage(
    storage: FsspecStorage,
    where: str,
    room: str,
    path: str,
    journal: LocalJournal | None = None,
) -> MeshDocument:
    """The stored document, replayed from its snapshot, log and `journal` (if any).

    Raises:
        CliError: no such room or document in the storage (exit 1, naming what is there).
    """
    journaled = await _journaled(journal, room, path)
    if journaled:  # maybe never uploaded at all: the journal alone has the document
        return await _load(storage, room, path, journaled)
    rooms = await storage.list_rooms()
    if room not in rooms:
        raise CliError(f"no room {room!r} in {where}", exit_code=EXIT_MISSING)
    documents = await storage.list_documents(room)
    if path not in documents:
        stored = ", ".join(documents[:10]) + (", …" if len(documents) > 10 else "")
        raise CliError(
            f"room {room!r} has no document {path!r} in {where}"
            + (f" (it has: {stored})" if stored else ""),
            exit_code=EXIT_MISSING,
        )
    return await _load(storage, room, path, journaled)


async def import_to_storage(
    storage: FsspecStorage,
    room: str,
    path: str,
    content: MeshDocument,
    journal: LocalJournal | None = None,
) -> None:
    """Replace the stored document's content: load it, replace, write one compacted snapshot.

    The journaled updates are loaded too, so the replacement deletes their content
    as well: the next server start uploads them again, and they then change nothing.
    """
    document = await _load(storage, room, path, await _journaled(journal, room, path))
    replace_content(document, content)
    await storage.compact(room, path, document.get_update())
