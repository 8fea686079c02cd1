"""`EmbeddedPeer`: an agent's room peer inside the server process, with no socket.

An agent embedded in the server joins the room's presence as a participant of
kind "agent" and edits the live documents directly: its edits are relayed to
every connection and reach the storage hooks exactly as a client's would, and
its awareness (cursor) is published to everyone on the document. It offers the
part of `RoomClient`'s interface that agents and toolkits use, so the same
`Agent` works over WebSocket or embedded::

    async with Server() as server, agent.embed(server, "team"):
        await agent.run("Summarise notes/plan")
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import anyio
from pycrdt import Doc

from ..client._calls import Offerable, ToolCalls
from ..client._threads import Conversations
from ..protocol._messages import AwarenessEntry, encode_awareness, encode_awareness_update
from ..protocol._names import validate_path, validate_room
from ..server._hooks import Access

if TYPE_CHECKING:
    from meshdoc import MeshDocument, MeshSchema

    from ..server._room import Room
    from ..server._server import Server

__all__ = ["EmbeddedPeer"]


class EmbeddedPeer:
    """A participant of `room` living in `server`'s process (see module docstring).

    Raises:
        RoomNameError: `room` is not a valid room name.
    """

    def __init__(
        self, server: Server, room: str, *, name: str, kind: str = "agent", id: str | None = None
    ) -> None:
        self.server = server
        self.room = validate_room(room)
        self.name = name
        self.kind = kind
        self.id = id if id is not None else str(uuid4())
        self._access = Access(self.id, name=name, kind=kind)  # type: ignore[arg-type]
        self._room: Room | None = None
        self._stack: AsyncExitStack | None = None
        self._documents: dict[str, MeshDocument] = {}
        self._awareness: dict[str, tuple[int, int, dict[str, Any]]] = {}
        self._tool_calls = ToolCalls(self._to_server, self)

    @property
    def participant_id(self) -> str:
        """Our participant id (as `RoomClient.participant_id`; in-process, it is `id`)."""
        return self.id

    async def __aenter__(self) -> EmbeddedPeer:
        if self._stack is not None:
            raise RuntimeError("Cannot open an EmbeddedPeer more than once.")
        self._stack = AsyncExitStack()
        self._room = self.server._acquire(self.room)
        self._room.presence.join(self._access)
        self._tool_calls.start(await self._stack.enter_async_context(anyio.create_task_group()))
        self._tool_calls.connected()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._stack is not None and self._room is not None
        for path in list(self._awareness):
            self._publish(path, None)
        self._room.calls.peer_left(self)
        self._tool_calls.disconnected()
        self._room.presence.leave(self._access)
        await self._stack.aclose()
        self.server._release(self._room)

    def _live_room(self) -> Room:
        if self._room is None:
            raise RuntimeError("the embedded peer is not in its room")
        return self._room

    # -- documents ---------------------------------------------------------------------------

    async def open(
        self, path: str, schema: MeshSchema | None = None, *, fragment: str = "default"
    ) -> MeshDocument:
        """The live document at `path` as a `MeshDocument` (held open until the peer leaves)."""
        validate_path(path)
        if path in self._documents:
            return self._documents[path]
        assert self._stack is not None
        document = await self._stack.enter_async_context(
            self.server.open_document(
                self.room, path, schema, fragment=fragment, participant=self.id
            )
        )
        self._documents[path] = document
        return document

    @property
    def open_documents(self) -> dict[str, MeshDocument]:
        """The documents this peer opened, by path (as `RoomClient.open_documents`)."""
        return dict(self._documents)

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        """The room's documents as the room document lists them (as `RoomClient.documents`)."""
        return self._live_room().directory.entries()

    async def list_documents(self) -> dict[str, dict[str, Any]]:
        """The room's documents, once the stored ones are listed (as `RoomClient`'s)."""
        room = self._live_room()
        await room.wait_listed()
        return room.directory.entries()

    def ydoc(self, path: str = "") -> Doc:
        """The live `pycrdt.Doc` of `path` (`""`: the room's presence document)."""
        room = self._live_room()
        if path == "":
            return room.presence_document.doc
        return self._documents[path].doc

    # -- presence ----------------------------------------------------------------------------

    @property
    def participants(self) -> dict[str, dict[str, Any]]:
        return self._live_room().participants()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self._live_room().presence.messages.to_py() or []

    async def send_message(
        self, content: Any, *, to: str | None = None, thread: str | None = None
    ) -> dict[str, Any]:
        """Post a room message from this participant (`str` as text, anything else as JSON)."""
        message_id = uuid4().hex[:16]
        presence = self._live_room().presence
        if isinstance(content, str):
            return presence.append(self.id, text=content, to=to, thread=thread, id=message_id)
        return presence.append(self.id, json=content, to=to, thread=thread, id=message_id)

    @property
    def conversations(self) -> Conversations:
        """Saved threads and streamed answers (as `RoomClient.conversations`)."""
        return self._tool_calls.conversations

    # -- tools offered in the room (the `CallPeer` of the server's `RoomCalls`) ---------

    @property
    def access(self) -> Access:
        return self._access

    @property
    def toolkits(self) -> dict[str, dict[str, Any]]:
        """Toolkits offered in the room (as `RoomClient.toolkits`)."""
        return self._live_room().calls.offers()

    async def offer(self, toolkit: Offerable) -> None:
        """Offer `toolkit` to the room (as `RoomClient.offer`)."""
        await self._tool_calls.offer(toolkit)

    async def withdraw(self, name: str) -> None:
        await self._tool_calls.withdraw(name)

    async def call_tool(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - the server's deadline for the call
    ) -> Any:
        """Call a tool offered in the room (as `RoomClient.call_tool`)."""
        return await self._tool_calls.call(toolkit, tool, arguments or {}, timeout=timeout)

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        """The room's work queues (as `RoomClient.queues`)."""
        return self._live_room().presence.entries("queues")

    async def send_to_queue(self, queue: str, item: Any) -> int:
        """Add `item` to a work queue of the room (as `RoomClient.send_to_queue`)."""
        return await self._tool_calls.queues.send(queue, item)

    def consume(self, queue: str) -> Any:
        """Take items of a work queue (as `RoomClient.consume`)."""
        return self._tool_calls.queues.consume(queue)

    def send_room_call(self, call: dict[str, Any]) -> None:
        """The room's answer to us (a result, a call to run): handled in-process."""
        self._tool_calls.receive(call)

    def _to_server(self, call: dict[str, Any]) -> bool:
        room = self._room
        if room is None:
            return False
        room.calls.handle(self, call, len(json.dumps(call, separators=(",", ":"))))
        return True

    def set_awareness(self, path: str, fields: dict[str, Any]) -> None:
        """Merge `fields` into this peer's awareness on `path` and tell everyone there."""
        _, _, state = self._awareness.get(path, (0, 0, {}))
        self._publish(path, {**state, **fields})

    def client_id(self, path: str = "") -> int:
        return self._awareness[path][0]

    def _publish(self, path: str, state: dict[str, Any] | None) -> None:
        room = self._live_room()
        document = room.presence_document if path == "" else room.documents.get(path)
        if document is None:
            return
        client, clock, _ = self._awareness.get(path, (_client_id(), 0, {}))
        if state is not None:
            state = {"user": {"id": self.id, "name": self.name, "kind": self.kind}, **state}
        entry = AwarenessEntry(client, clock + 1, state)
        document.awareness.apply([entry])
        document.broadcast(encode_awareness(encode_awareness_update([entry])))
        if state is None:
            self._awareness.pop(path, None)
        else:
            self._awareness[path] = (client, clock + 1, state)


def _client_id() -> int:
    """A random 32-bit Yjs client id, as Yjs picks its own, for this peer's awareness."""
    return uuid4().int & 0xFFFFFFFF
