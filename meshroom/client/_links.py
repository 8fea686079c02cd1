"""A `RoomClient`'s sockets: one `DocumentLink` per open path, run in the client's task group.

Apart from the client because it changes with how links are made, started and kept, not
with what a peer does in the room: the room document's link joins first and decides
whether the client opened at all; each document's link is opened once however many
callers ask for it at the same moment; a token refresh or a new identity reaches every
link; every link reports its changes to one signal that waiters wait on; and the first
refusal any link met is the error every later call raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from anyio.abc import TaskGroup
from pycrdt import Doc

from .._exceptions import ClientError
from .._retry import Backoff
from ._link import DocumentLink

__all__ = ["DocumentLinks", "socket_url"]


def socket_url(server: str, room: str, path: str, query: dict[str, str]) -> str:
    """The socket URL of the document at `path` (``""``: the room document) in `room`."""
    target = quote(room, safe="")
    if path:
        target += "/" + "/".join(quote(segment, safe="") for segment in path.split("/"))
    return f"{server}/{target}?{urlencode(query)}"


class DocumentLinks:
    """The links of one client by document path (``""``: the room document).

    Args:
        room: The room's name, for error messages.
        url_of: The socket URL of a path, with the current token.
        user: Our awareness field ``user`` as it is now.
        backoff: Reconnect delays of every link.
        connect_timeout: How long each link's first connection may take.
        on_room_sync: Called after each handshake of the room document's link.
        on_identity: Called with who the server says a connection is.
        on_room_call: Called with the body of each room call the room's link receives.
        on_room_disconnect: Called when the room document's connection drops.
    """

    def __init__(
        self,
        room: str,
        *,
        url_of: Callable[[str], str],
        user: Callable[[], dict[str, Any]],
        backoff: Backoff,
        connect_timeout: float,
        on_room_sync: Callable[[], None],
        on_identity: Callable[[dict[str, Any]], None],
        on_room_call: Callable[[bytes], None] | None = None,
        on_room_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self._room = room
        self._url_of = url_of
        self._user = user
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._on_room_sync = on_room_sync
        self._on_identity = on_identity
        self._on_room_call = on_room_call
        self._on_room_disconnect = on_room_disconnect
        self._changed = anyio.Event()
        self._links: dict[str, DocumentLink] = {}
        self._opening: dict[str, anyio.Lock] = {}
        #: The room document's link, from the moment it starts joining (made in `join`).
        self.room: DocumentLink | None = None
        #: Where the links run, while the client runs.
        self.task_group: TaskGroup | None = None

    def _make(self, path: str, doc: Doc) -> DocumentLink:
        return DocumentLink(
            self._url_of(path),
            doc,
            user=self._user(),
            backoff=self._backoff,
            connect_timeout=self._connect_timeout,
            on_change=self.notify,
            on_sync=self._on_room_sync if path == "" else None,
            on_identity=self._on_identity,
            on_room_call=self._on_room_call if path == "" else None,
            on_disconnect=self._on_room_disconnect if path == "" else None,
            ephemeral=path == "",  # presence lives and dies with the server process
        )

    async def join(self, task_group: TaskGroup) -> None:
        """Start the room document's link in `task_group`; return once it synced.

        Raises:
            ClientError: the room's socket could not connect, or was refused.
        """
        self.task_group = task_group
        link = self.room = self._make("", Doc())
        await task_group.start(link.run)
        self._links[""] = link

    async def open(self, path: str) -> DocumentLink:
        """The link of `path`, started and synced on first use (once, however many ask)."""
        async with self._opening.setdefault(path, anyio.Lock()):
            link = self._links.get(path)
            if link is None:
                link = self._make(path, Doc())
                assert self.task_group is not None
                await self.task_group.start(link.run)
                self._links[path] = link
            return link

    async def close(self, path: str) -> None:
        """Close the link of document `path`, if open (the room document's stays)."""
        link = self._links.pop(path, None) if path else None
        if link is not None:
            await link.close()

    async def close_all(self) -> None:
        """Close every link at once, each flushing what it has queued."""
        async with anyio.create_task_group() as closing:
            for link in self._links.values():
                closing.start_soon(link.close)

    def get(self, path: str) -> DocumentLink:
        """The link of an open path.

        Raises:
            ClientError: `path` is not open.
        """
        link = self._links.get(path)
        if link is None:
            raise ClientError(f"document {path!r} is not open in room {self._room!r}")
        return link

    def room_doc(self) -> Doc:
        """The room document (an empty one before the room's link is made)."""
        return self.room.doc if self.room is not None else Doc()

    @property
    def connected(self) -> bool:
        """Whether there are links and every one is connected and synced."""
        return bool(self._links) and all(link.connected for link in self._links.values())

    def raise_error(self) -> None:
        """Raise the refusal a link met, if one did."""
        for link in self._links.values():
            if link.error is not None:
                raise link.error

    def set_user(self, user: dict[str, Any]) -> None:
        """Publish `user` in the awareness of every link, the joining room link's too."""
        for link in self._links.values():
            link.set_user(user)
        if self.room is not None:
            self.room.set_user(user)

    async def refresh_token(self, token: str) -> list[ClientError]:
        """Present `token` on every link at once; each reconnects with its new URL.

        Returns:
            The refusals (or missing answers), in the order they came.
        """
        links = list(self._links.items())
        errors: list[ClientError] = []

        async def refresh(path: str, link: DocumentLink) -> None:
            try:
                await link.refresh_token(token, self._url_of(path))
            except ClientError as error:
                errors.append(error)

        async with anyio.create_task_group() as group:
            for path, link in links:
                group.start_soon(refresh, path, link)
        return errors

    def notify(self) -> None:
        """Wake everyone waiting in `next_change`."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def next_change(self) -> None:
        """Wait for the next change a link reports, or 0.2 s (to re-check other state)."""
        changed = self._changed
        with anyio.move_on_after(0.2):
            await changed.wait()
