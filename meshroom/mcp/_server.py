"""`RoomMcpServer`: a room participant that any MCP client drives, through the official SDK.

Agent frameworks speak the Model Context Protocol; this puts one of them in a
room as a participant of kind "agent" without writing an agent loop of ours.
The server holds one `RoomClient` and exposes, as MCP tools with their JSON
Schemas, the tools a meshroom agent has: the documents toolkit, the room
toolkit, and every toolkit other participants offer in the room. Documents are
resources (`meshdoc://ROOM/PATH`, see `_resources`).

It runs the very toolkits a meshroom `Agent` runs, with a `ToolContext` of its
own, so what holds for an agent holds here: each call validates its arguments,
each edit is one transaction with this participant's `AgentOrigin` (per-origin
undo removes its edits and nobody else's; a refused or failed call writes
nothing), and its cursor shows in awareness.

Grants apply as the server decides them: a session whose token is read-only
for the whole room lists read tools only, and any write it still attempts (or a
write to a document its grants keep read-only) comes back as a tool error that
says so. Changes reach clients as MCP notifications, in both protocol eras:
`notifications/initialized` sessions (2025 handshake) get ``tools/list_changed``,
``resources/list_changed`` and, for subscribed URIs, ``resources/updated``;
2026 clients get the same events on their ``subscriptions/listen`` streams.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError

from ..agents import AgentOrigin, ErrorResponse, ToolContext, Toolkit, ToolResponse
from ..agents._loop import summarize_call
from ..agents._remote import room_toolkits
from ..agents._toolkit import find_tool
from ..agents.toolkits import documents_toolkit, room_toolkit
from ._resources import document_uri, parse_uri, read_contents, resource_of
from ._results import to_call_result
from ._strict import optional_nulls, with_nulls

__all__ = ["RoomMcpServer"]

logger = logging.getLogger("meshroom.mcp")

#: Seconds a client may take to accept one notification before it is skipped.
_NOTIFY_WAIT = 5.0
#: Seconds between a document change and its ``resources/updated`` (changes within are one).
_UPDATE_DELAY = 0.05


class RoomMcpServer:
    """Expose a joined `RoomClient` to MCP clients (stdio or streamable HTTP: `_run`).

    Args:
        client: The room peer, opened (``async with``) before `serve` starts; join it
            with ``kind="agent"`` so the room lists it as an agent.
        name: The participant's display name (its edits' origin carries it).
        schema: The `MeshSchema` documents are opened with (None: untyped).
        progress: Post each tool call to the room as an ``agent.progress`` message,
            as a meshroom agent does, so front ends show what it is doing.
    """

    def __init__(
        self, client: Any, *, name: str, schema: Any = None, progress: bool = True
    ) -> None:
        self.client = client
        self.name = name
        self.progress = progress
        self.documents = documents_toolkit(schema)
        self.room_tools = room_toolkit()
        self._read_documents = Toolkit(
            "documents",
            [item for item in self.documents if item.read_only],
            self.documents.rules,
        )
        self._write_tools = {item.name for item in self.documents if not item.read_only}
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        #: Handshake-era connections, to notify of changes (2026 ones listen on the bus).
        self._sessions: set[Any] = set()
        #: Handshake-era ``resources/subscribe``: URI -> connections.
        self._subscribers: dict[str, set[Any]] = {}
        self._observed: dict[str, Any] = {}
        self._changed: set[str] = set()
        self.server: Server[Any] = Server(
            "meshroom",
            version=_version(),
            title=f"meshroom room {client.room!r}",
            instructions=self._instructions(),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._listen_stream,
        )
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )

    # -- what it offers ------------------------------------------------------------------

    @property
    def origin(self) -> AgentOrigin:
        """The origin of this participant's edits (undo managers track it)."""
        return AgentOrigin(self.client.participant_id, self.name)

    @property
    def read_only(self) -> bool:
        """Whether the server admitted this participant read-only in the whole room."""
        return bool(self.client.read_only(""))

    def toolkits(self) -> list[Toolkit]:
        """The toolkits listed now: documents (read tools only when read-only), room, offered."""
        kits: list[Toolkit] = [
            self._read_documents if self.read_only else self.documents,
            self.room_tools,
        ]
        taken = {item.name for kit in kits for item in kit}
        taken |= self._write_tools
        offered = room_toolkits(
            self.client.toolkits,
            self.client.participants,
            exclude=self.client.participant_id,
            taken=taken,
        )
        return [*kits, *offered]

    def initialization_options(self) -> InitializationOptions:
        """What the server announces: tools and resources that change, with notifications."""
        return self.server.create_initialization_options(
            NotificationOptions(tools_changed=True, resources_changed=True)
        )

    def _instructions(self) -> str:
        rules = [*self.documents.rules, *self.room_tools.rules]
        return (
            f"You are {self.name}, a participant in the shared room {self.client.room!r}, "
            "where people edit the same documents at the same time. Re-read before editing; "
            "documents change under you. " + " ".join(rules)
        )

    def context(self) -> ToolContext:
        """The context every tool call runs in: this participant, its peer and origin."""
        return ToolContext(
            room=self.client.room,
            caller=self.client.participant_id,
            client=self.client,
            origin=self.origin,
        )

    async def call(self, name: str, arguments: dict[str, Any] | None) -> ToolResponse:
        """Run one tool call as an MCP client asked for it; every failure is a response."""
        kits = self.toolkits()
        kit = find_tool(kits, name)
        if kit is None:
            if name in self._write_tools and self.read_only:
                return ErrorResponse(
                    f"read-only access: {name} edits documents, and the server admitted "
                    f"{self.client.participant_id!r} to room {self.client.room!r} read-only "
                    "(its token's grants); nothing was written"
                )
            available = sorted(item.name for kit in kits for item in kit)
            return ErrorResponse(f"unknown tool {name!r}", details={"available": available})
        item = kit.get(name)
        assert item is not None  # the toolkit offers `name`
        arguments = with_nulls(item.input_schema, arguments or {})
        response = await kit.execute(self.context(), name, arguments)
        self._watch_open_documents()
        if self.progress:
            await self._post_progress(name, arguments, response)
        return response

    async def _post_progress(
        self, name: str, arguments: dict[str, Any], response: ToolResponse
    ) -> None:
        note = {
            "type": "agent.progress",
            "tool": name,
            "summary": summarize_call(name, json.dumps(arguments)),
            "ok": not isinstance(response, ErrorResponse),
            "via": "mcp",
        }
        try:
            await self.client.send_message(note)
        except Exception:  # progress is decoration: never fail the call for it
            logger.debug("could not post progress", exc_info=True)

    # -- MCP handlers --------------------------------------------------------------------

    async def _initialized(self, ctx: Any, params: Any) -> None:
        self._sessions.add(_connection(ctx))

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = [
            types.Tool(
                name=item.name,
                title=item.title,
                description=item.description,
                input_schema=optional_nulls(item.input_schema),
                annotations=types.ToolAnnotations(
                    title=item.title,
                    read_only_hint=item.read_only,
                    destructive_hint=False if item.read_only else None,
                ),
            )
            for kit in self.toolkits()
            for item in kit
        ]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        return to_call_result(await self.call(params.name, params.arguments))

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        listed = await self.client.list_documents()
        room = self.client.room
        return types.ListResourcesResult(
            resources=[resource_of(room, path, entry) for path, entry in sorted(listed.items())]
        )

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> Any:
        uri = str(params.uri)
        path, formats = self._parse(uri)
        document = await self.open_document(path)
        return types.ReadResourceResult(contents=read_contents(uri, document, formats))

    async def _subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> Any:
        uri = str(params.uri)
        path, _ = self._parse(uri)
        await self.open_document(path)
        self._subscribers.setdefault(_base_uri(uri), set()).add(_connection(ctx))
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> Any:
        sessions = self._subscribers.get(_base_uri(str(params.uri)))
        if sessions is not None:
            sessions.discard(_connection(ctx))
        return types.EmptyResult()

    async def _listen_stream(self, ctx: Any, params: types.SubscriptionsListenRequestParams) -> Any:
        for uri in params.notifications.resource_subscriptions or ():
            try:
                await self.open_document(self._parse(uri)[0])
            except MCPError:
                logger.info("listen: %s is not a document of this room", uri)
        return await self._listen(ctx, params)

    def _parse(self, uri: str) -> tuple[str, tuple[str, ...]]:
        try:
            return parse_uri(uri, self.client.room)
        except ValueError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from None

    async def open_document(self, path: str) -> Any:
        """Open `path` for this participant (its undo manager first), watched for changes."""
        document = await self.documents.access.open(self.context(), path)
        self._watch_open_documents()
        return document

    # -- changes -> notifications ----------------------------------------------------------

    async def watch(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Turn room changes into MCP notifications until cancelled.

        Offered toolkits (and the read-only scope) change the tool list; the room's
        documents change the resource list; an edit of an open document updates its
        resource. The room document is re-made on every reconnection, so this reads
        the client's state after each change rather than observing one copy of it.

        Raises:
            ClientError: the server refused this participant (the serving ends).
        """
        client = self.client
        tools, documents = self._tools_signature(), sorted(client.documents)
        self._watch_open_documents()
        task_status.started()
        while True:
            await client.wait_for(
                lambda tools=tools, documents=documents: (
                    self._changed
                    or self._tools_signature() != tools
                    or sorted(client.documents) != documents
                )
            )
            await anyio.sleep(_UPDATE_DELAY)  # what changes together is told together
            if self._tools_signature() != tools:
                tools = self._tools_signature()
                await self._publish(ToolsListChanged(), "send_tool_list_changed")
            if sorted(client.documents) != documents:
                documents = sorted(client.documents)
                await self._publish(ResourcesListChanged(), "send_resource_list_changed")
            changed, self._changed = self._changed, set()
            for path in sorted(changed):
                await self._resource_updated(document_uri(client.room, path))

    def _tools_signature(self) -> str:
        offered = {
            key: entry
            for key, entry in self.client.toolkits.items()
            if entry.get("offeredBy") != self.client.participant_id
        }
        offerers = {str(entry.get("offeredBy")) for entry in offered.values()}
        names = {who: self.client.participants.get(who, {}).get("name") for who in offerers}
        return json.dumps([offered, names, self.read_only], sort_keys=True, default=str)

    def _watch_open_documents(self) -> None:
        for path in self.client.open_documents:
            if path not in self._observed:
                doc = self.client.ydoc(path)

                def changed(_event: Any, path: str = path) -> None:
                    self._changed.add(path)

                self._observed[path] = doc.observe(changed)

    async def _resource_updated(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))
        for session in list(self._subscribers.get(uri, ())):
            await self._send(session, "send_resource_updated", uri)

    async def _publish(self, event: Any, method: str) -> None:
        await self._bus.publish(event)
        for session in list(self._sessions):
            await self._send(session, method)

    async def _send(self, session: Any, method: str, *arguments: Any) -> None:
        with anyio.move_on_after(_NOTIFY_WAIT) as waited:
            try:
                await getattr(session, method)(*arguments)
            except Exception:  # the connection ended: it is told nothing more
                self._forget(session)
                return
        if waited.cancelled_caught:
            logger.info("an MCP client did not take a notification in %s s", _NOTIFY_WAIT)

    def _forget(self, session: Any) -> None:
        self._sessions.discard(session)
        for sessions in self._subscribers.values():
            sessions.discard(session)


def _connection(ctx: Any) -> Any:
    """The client connection a handler's context belongs to, which outlives the request.

    A handler's `ServerSession` is made for its one request; notifications outside any
    request go through the connection it wraps (both have the `send_*` methods used
    here). The SDK keeps it private, so a session without one stands for itself.
    """
    return getattr(ctx.session, "_connection", None) or ctx.session


def _base_uri(uri: str) -> str:
    return uri.split("?", 1)[0]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshdoc")
    except PackageNotFoundError:
        return "unknown"
