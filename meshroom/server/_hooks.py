"""Extension hooks: how storage, auth, metrics and scale-out plug into the server.

Like Hocuspocus extensions: one class with optional async methods, each taking
one frozen payload object (so adding a field breaks no one), called in
`priority` order (higher first). Raising from a hook rejects what it guards:
`on_authenticate` raising `AuthenticationError` refuses the connection,
`on_store_document` raising keeps the room alive and the write is retried.

Document hooks are never called for a room's own presence document (path
``""``): presence is ephemeral and never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pycrdt import Doc

__all__ = [
    "Access",
    "ActivityPayload",
    "AuthenticatePayload",
    "ChangePayload",
    "ConnectionPayload",
    "DeleteDocumentPayload",
    "DocumentInfo",
    "Extension",
    "ListDocumentsPayload",
    "LoadDocumentPayload",
    "LoadThreadPayload",
    "StoreDocumentPayload",
]

ParticipantKind = Literal["person", "agent"]


@dataclass(frozen=True)
class Access:
    """What a connection may do, decided by `on_authenticate` (or open access without auth)."""

    participant_id: str
    name: str = ""
    kind: ParticipantKind = "person"
    read_only: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Whether the participant may post room messages (a read-only token may, by default).
    may_message: bool = True
    #: Whether the participant may offer toolkits to the room (room calls, type 5).
    may_offer_tools: bool = True
    #: Whether the participant may call tools others offer.
    may_call_tools: bool = True
    #: Whether the participant may read the room's activity log (an admin grant).
    admin: bool = False
    #: Unix time at which the server closes the connection with 4401 (None: never), so
    #: that a session does not outlive its credentials. `JwtAuth(close_at_expiry=True)`
    #: sets it from the token's ``exp``; a token refresh moves it.
    expires_at: float | None = None
    #: The id of the token that admitted the connection (a JWT's ``jti``), so a
    #: revocation of that token can close the connection; None without one. Not
    #: compared: two accesses granting the same are equal, whatever token granted them.
    token_id: str | None = field(default=None, compare=False)
    #: Unix time the token was issued (a JWT's ``iat``), which a revocation of the
    #: participant's earlier tokens compares to; None when unknown. Not compared.
    issued_at: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AuthenticatePayload:
    """A connection asking to open `path` of `room` (path ``""`` is the room document)."""

    room: str
    path: str
    token: str | None
    headers: dict[str, str]
    client: str | None  # "host:port" of the peer, when the transport knows it


@dataclass(frozen=True)
class LoadDocumentPayload:
    """A document is opened for the first time in this process: fill `doc` from storage."""

    room: str
    path: str
    doc: Doc
    #: The server's `LiveDocument` holding `doc` (its awareness store, its sessions and
    #: `broadcast_listeners`), for extensions that relay awareness, like scale-out.
    document: Any = None
    #: ``saved(size, modified)``: a storing extension calls it after each write of this
    #: document (bytes now stored, Unix time of the write), so that the room document's
    #: `documents` map shows it stored, with its size, without the server knowing storage.
    saved: Callable[[int, float], None] | None = None


@dataclass(frozen=True)
class ChangePayload:
    """The server accepted `update` (Yjs v1) into `doc`; `origin` names who sent it."""

    room: str
    path: str
    doc: Doc
    update: bytes
    origin: Any


@dataclass(frozen=True)
class LoadThreadPayload:
    """Participant `participant` asks for the conversation it saved as `thread` in `room`."""

    room: str
    participant: str
    thread: str


@dataclass(frozen=True)
class StoreDocumentPayload:
    """The room is closing or the server shutting down: write `doc` now."""

    room: str
    path: str
    doc: Doc
    reason: Literal["room-close", "shutdown", "explicit"]


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document, as the extension storing it knows it (see `on_list_documents`)."""

    path: str
    #: Bytes stored for it (its snapshot and log); 0 when unknown.
    size: int = 0
    #: Unix time of its last write; None when unknown.
    modified: float | None = None


@dataclass(frozen=True)
class ListDocumentsPayload:
    """A room was opened in this process: which documents are stored for it?"""

    room: str


@dataclass(frozen=True)
class DeleteDocumentPayload:
    """`Server.delete_document` removes `path` of `room`: forget it wherever it is kept."""

    room: str
    path: str


@dataclass(frozen=True)
class ActivityPayload:
    """One activity event of a room session (docs/activity.md lists the types).

    `event` is JSON-ready: ``type``, ``time`` (Unix seconds), ``room``, ``session`` and
    the type's own fields. It never holds a token, nor document contents.
    """

    room: str
    session: str
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.event["type"])


@dataclass(frozen=True)
class ConnectionPayload:
    """A connection joined or left `path` of `room`."""

    room: str
    path: str
    access: Access
    #: The server's session of this connection, for extensions that act on it later
    #: (auth closing connections whose token was revoked): `session.access` is its
    #: current access (a token refresh replaces it), `session.kill(code, reason)`
    #: closes it from any task. None for payloads built outside the server.
    session: Any = None


class Extension:
    """Base class for server extensions; override only the hooks you need."""

    priority: int = 100
    #: True for auth extensions: the server then waits for a token (query parameter
    #: `token`, `Authorization: Bearer`, or a first y-websocket auth message) before
    #: calling `on_authenticate`, and refuses connections no extension admits.
    requires_token: bool = False

    async def on_startup(self) -> None:
        """The server starts (ASGI lifespan startup)."""

    async def on_shutdown(self) -> None:
        """The server stops, after every room's documents were stored."""

    async def on_authenticate(self, payload: AuthenticatePayload) -> Access | None:
        """Decide who connects; return None for no opinion, raise AuthenticationError to refuse."""
        return None

    async def on_load_document(self, payload: LoadDocumentPayload) -> None:
        """Apply stored state into `payload.doc` before any client syncs."""

    async def on_list_documents(self, payload: ListDocumentsPayload) -> list[DocumentInfo] | None:
        """The documents stored for `payload.room`; None if this extension stores none.

        Called once when a room opens, so that its room document lists stored documents
        before anyone opens them; the lists of several extensions are merged.
        """
        return None

    async def on_delete_document(self, payload: DeleteDocumentPayload) -> None:
        """Remove the document from wherever this extension keeps it (raise to refuse)."""

    async def on_change(self, payload: ChangePayload) -> None:
        """Called for every update accepted into a document (keep it cheap: buffer, don't block)."""

    async def on_store_document(self, payload: StoreDocumentPayload) -> None:
        """Persist the document; raise to keep the room open and have the write retried."""

    async def on_activity(self, payload: ActivityPayload) -> None:
        """An activity event (a join, a save, a refusal, an agent run), delivered in order.

        Called by one task of the server, behind editing: events are dropped (and
        counted) rather than waited for when the hooks fall far behind.
        """

    async def on_load_thread(self, payload: LoadThreadPayload) -> list[dict[str, Any]] | None:
        """The messages of a saved agent conversation (a ``thread.saved`` activity event),
        or None if this extension has none: the first answer that is not None wins."""
        return None

    async def on_connect(self, payload: ConnectionPayload) -> None:
        """A connection was accepted."""

    async def on_disconnect(self, payload: ConnectionPayload) -> None:
        """A connection closed."""
