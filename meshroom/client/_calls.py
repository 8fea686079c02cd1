"""`ToolCalls`: a participant's side of room calls, offering toolkits and calling others'.

Shared by `RoomClient` (over its room-document connection) and the agents' in-process
peer: both give it a `send` for room calls and hand it every room call they receive.
Offers are tied to a connection on the server, so they are sent again after each
reconnection; calls pending when the connection drops fail with reason
``disconnected`` (the server cancels them at the offerer).

An offered toolkit is anything with the `Offerable` shape: `meshroom.agents.Toolkit`
has it, and so can a few lines of your own.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from .._exceptions import ClientError, ProtocolError
from ..protocol._calls import decode_room_call
from ._queues import WorkQueues
from ._threads import Conversations

__all__ = ["Offerable", "RoomCallError", "ToolCalls"]

log = logging.getLogger("meshroom.client")

#: Seconds to wait for the server to confirm an offer.
OFFER_WAIT = 10.0


class Offerable(Protocol):
    """A toolkit that can be offered to a room (`meshroom.agents.Toolkit` is one)."""

    name: str

    def offer_spec(self) -> dict[str, Any]:
        """``{"name", "description", "tools": [{name, description, inputSchema}, ...]}``."""

    async def run_remote(
        self, tool: str, arguments: dict[str, Any], *, caller: str, peer: Any
    ) -> dict[str, Any]:
        """Run one call from participant `caller`; return ``{"result": value}`` or
        ``{"error": message, "details": ...}``. `peer` is the client it was offered on."""


class RoomCallError(ClientError):
    """A tool call that ended without a result.

    Attributes:
        reason: Why, as docs/room-document.md lists it (``unknown-tool``, ``timeout``,
            ``offerer-left``, ``tool-error``, ``disconnected``…).
        details: What the offerer added to its error, if anything.
    """

    def __init__(self, message: str, *, reason: str, details: Any = None) -> None:
        super().__init__(message, reason=reason)
        self.details = details


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: dict[str, Any] = {}


class ToolCalls:
    """Offers made and calls pending on one participant's room connection."""

    def __init__(self, send: Callable[[dict[str, Any]], bool], peer: Any) -> None:
        #: Sends a room call; False when offline (nothing was sent).
        self._send = send
        self._peer = peer
        self._offered: dict[str, Offerable] = {}
        self._offer_waiters: dict[str, _Waiter] = {}
        self._calls: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        #: Calls being run for others, by the server's call id (cancelled on request).
        self._running: dict[int, anyio.CancelScope] = {}
        self._group: TaskGroup | None = None
        self._online = anyio.Event()
        #: The room's work queues, whose replies share this channel.
        self.queues = WorkQueues(send)
        #: Saved threads and streamed answers, whose replies share it too.
        self.conversations = Conversations(send)

    def start(self, group: TaskGroup) -> None:
        """Run offered tools in `group` (the client's task group)."""
        self._group = group

    # -- connection ----------------------------------------------------------------------

    def connected(self) -> None:
        """A handshake completed: (re-)offer every toolkit offered so far."""
        self._online.set()
        self.queues.connected()
        for toolkit in self._offered.values():
            self._send({"type": "offer", "toolkit": toolkit.offer_spec()})

    def disconnected(self) -> None:
        """The connection dropped: pending calls fail, running ones stop (the server
        cancelled them)."""
        self._online = anyio.Event()
        for waiter in self._calls.values():
            waiter.reply = {
                "error": "the connection to the room dropped during the call",
                "reason": "disconnected",
            }
            waiter.done.set()
        self._calls.clear()
        for scope in self._running.values():
            scope.cancel()
        self._running.clear()

    # -- offering ------------------------------------------------------------------------

    async def offer(self, toolkit: Offerable) -> None:
        """Offer `toolkit` to the room, and again after each reconnection.

        Raises:
            RoomCallError: the server refused the offer (its reason says why).
        """
        spec = toolkit.offer_spec()
        self._offered[toolkit.name] = toolkit
        waiter = self._offer_waiters[toolkit.name] = _Waiter()
        if not self._send({"type": "offer", "toolkit": spec}):
            return  # offline: `connected` offers it after the handshake
        with anyio.move_on_after(OFFER_WAIT):
            await waiter.done.wait()
        self._offer_waiters.pop(toolkit.name, None)
        if "error" in waiter.reply:
            self._offered.pop(toolkit.name, None)
            raise RoomCallError(
                f"the room refused toolkit {toolkit.name!r}: {waiter.reply['error']}",
                reason="refused",
            )

    async def withdraw(self, name: str) -> None:
        """Stop offering toolkit `name` (nothing if it was not offered)."""
        if self._offered.pop(name, None) is not None:
            self._send({"type": "withdraw", "toolkit": name})
        await anyio.lowlevel.checkpoint()

    # -- calling -------------------------------------------------------------------------

    async def call(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None,  # noqa: ASYNC109 - the server's deadline, sent with the call
    ) -> Any:
        """Call `tool` of `toolkit` (``"OFFERER/NAME"``, or a name only one offers).

        Raises:
            RoomCallError: no result (reason says why: unknown tool, timeout, the
                offerer left, the tool failed, the connection dropped).
        """
        wait = math.inf if timeout is None else timeout
        with anyio.move_on_after(wait):
            await self._online.wait()
        if not self._online.is_set():
            raise RoomCallError("not connected to the room", reason="disconnected")
        call_id = next(self._ids)
        waiter = self._calls[call_id] = _Waiter()
        request: dict[str, Any] = {
            "type": "call",
            "id": call_id,
            "toolkit": toolkit,
            "tool": tool,
            "arguments": arguments,
        }
        if timeout is not None:
            request["timeout"] = timeout
        try:
            self._send(request)
            await waiter.done.wait()
        except BaseException:
            if self._calls.pop(call_id, None) is not None:  # cancelled: tell the server
                self._send({"type": "cancel", "id": call_id})
            raise
        reply = waiter.reply
        if "error" in reply:
            raise RoomCallError(
                f"{toolkit}.{tool}: {reply['error']}",
                reason=str(reply.get("reason", "tool-error")),
                details=reply.get("details"),
            )
        return reply.get("result")

    # -- receiving -----------------------------------------------------------------------

    def receive_encoded(self, body: bytes) -> None:
        """Act on a room call's body as it came off the wire (malformed: logged, dropped)."""
        try:
            call = decode_room_call(body)
        except ProtocolError as error:
            log.warning("bad room call from the server: %s", error)
            return
        self.receive(call)

    def receive(self, call: dict[str, Any]) -> None:
        """Act on one room call from the server (queue items and replies go to `queues`)."""
        if self.queues.receive(call) or self.conversations.receive(call):
            return
        kind = call.get("type")
        if kind == "result":
            waiter = self._calls.pop(call.get("id"), None)  # type: ignore[arg-type]
            if waiter is not None:
                waiter.reply = call
                waiter.done.set()
        elif kind in ("offered", "withdrawn"):
            waiter = self._offer_waiters.get(call.get("toolkit"))  # type: ignore[arg-type]
            if waiter is not None:
                waiter.done.set()
        elif kind == "error":
            log.warning("the room refused a room call: %s", call.get("error"))
            waiter = self._offer_waiters.get(call.get("request"))  # type: ignore[arg-type]
            if waiter is not None:
                waiter.reply = call
                waiter.done.set()
        elif kind == "call":
            self._run(call)
        elif kind == "cancel":
            scope = self._running.pop(call.get("id"), None)  # type: ignore[arg-type]
            if scope is not None:
                scope.cancel()

    def _run(self, call: dict[str, Any]) -> None:
        toolkit = self._offered.get(call.get("toolkit"))  # type: ignore[arg-type]
        call_id = call.get("id")
        if toolkit is None or self._group is None or not isinstance(call_id, int):
            self._send(
                {"type": "result", "id": call_id, "error": "this toolkit is no longer offered"}
            )
            return
        scope = anyio.CancelScope()
        self._running[call_id] = scope
        self._group.start_soon(self._run_one, toolkit, call, scope)

    async def _run_one(self, toolkit: Offerable, call: dict[str, Any], scope: Any) -> None:
        call_id = call["id"]
        reply: dict[str, Any] | None = None
        with scope:
            try:
                reply = await toolkit.run_remote(
                    str(call.get("tool")),
                    call.get("arguments") or {},
                    caller=str(call.get("from")),
                    peer=self._peer,
                )
            except Exception as error:  # a tool's failure is the caller's result
                log.debug("offered tool %s failed", call.get("tool"), exc_info=True)
                reply = {"error": f"{call.get('tool')} failed: {error}"}
        if self._running.pop(call_id, None) is None or reply is None:
            return  # cancelled: the server already answered the caller
        self._send({"type": "result", "id": call_id, **reply})
