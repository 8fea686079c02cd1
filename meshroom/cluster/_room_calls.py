"""Tool calls across processes: the two proxy `CallPeer`s and the messages between them.

`RoomCalls` routes a call to the peer of an offer, and a result to the peer of the
caller. Across processes both ends are stood for by a proxy:

- on the caller's process B, an offer listed by process A is held with a
  `RemoteOfferer` as its peer: it forwards the call (and a cancel) to A's channel;
- on A, the call is handled again by A's `RoomCalls` as coming from a `RemoteCaller`
  (one per calling process and participant), whose grants B has checked already;
  A checks sizes and keeps the call's deadline, and the result goes back to B, where
  the `RemoteOfferer` hands it to B's `RoomCalls` with its reason intact.

Neither proxy ever forwards an ``error`` reply (a late result refused, say): it is only
logged, so two processes never answer each other's answers.

Messages on a process's calls channel are JSON objects
``{"kind": "call" | "cancel" | "result", "room", "key": "OFFERER/TOOLKIT", "from": process,
...}``: a call carries ``caller`` and the ``call`` as `RoomCalls` sent it (with its
``timeout``), a cancel ``caller`` and ``id``, a result the ``call`` reply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..server._hooks import Access
from ._streams import calls_channel

if TYPE_CHECKING:
    from ..server._room import Room
    from ._room_outbox import RoomOutbox

__all__ = [
    "CallLink",
    "RemoteCaller",
    "RemoteOfferer",
    "RoomCallProxies",
    "forwarded",
    "refuse_call",
]

log = logging.getLogger("meshroom.cluster")


class CallLink:
    """Sends call messages to another process's channel (through the room outbox)."""

    def __init__(self, outbox: RoomOutbox, *, prefix: str, process: str) -> None:
        self._outbox = outbox
        self._prefix = prefix
        self.process = process

    def send(self, process: str, message: dict[str, Any]) -> None:
        message["from"] = self.process
        try:
            data = json.dumps(message, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            log.warning("cluster: a room call that is not JSON was not forwarded")
            return
        self._outbox.publish(calls_channel(self._prefix, process), data)


class RemoteOfferer:
    """The peer of an offer made on another process: forwards its calls there."""

    def __init__(self, link: CallLink, room: str, process: str, key: str) -> None:
        self._link = link
        self.room = room
        self.process = process
        self.key = key
        self._access = Access(
            key.split("/", 1)[0], may_message=False, may_offer_tools=False, may_call_tools=False
        )
        #: Calls forwarded and not answered: call id -> the caller's participant id.
        self._callers: dict[Any, str] = {}

    @property
    def access(self) -> Access:
        return self._access

    def send_room_call(self, call: dict[str, Any]) -> None:
        kind = call.get("type")
        if kind == "call":
            self._callers[call["id"]] = call["from"]
            message = {"kind": "call", "room": self.room, "key": self.key, "caller": call["from"]}
            self._link.send(self.process, {**message, "call": call})
        elif kind == "cancel":
            caller = self._callers.pop(call.get("id"), None)
            if caller is not None:
                message = {"kind": "cancel", "room": self.room, "key": self.key}
                self._link.send(self.process, {**message, "caller": caller, "id": call["id"]})
        else:
            log.debug("cluster: not forwarding %r to %s: %s", kind, self.process, call)

    def answered(self, call_id: Any) -> None:
        """A result for `call_id` came back (it is no longer forwarded)."""
        self._callers.pop(call_id, None)


class RemoteCaller:
    """The caller of calls forwarded from another process: results go back there.

    `on_idle` is told when no forwarded call waits anymore (the proxy is then dropped).
    """

    def __init__(
        self,
        link: CallLink,
        room: str,
        process: str,
        caller: str,
        on_idle: Callable[[RemoteCaller], None],
    ) -> None:
        self._link = link
        self.room = room
        self.process = process
        self.caller = caller
        self._on_idle = on_idle
        # The calling process checked the caller's grants before forwarding.
        self._access = Access(caller, may_message=False, may_offer_tools=False)
        #: Forwarded calls waiting for their result: the caller's process's id -> key.
        self._keys: dict[Any, str] = {}

    @property
    def access(self) -> Access:
        return self._access

    @property
    def idle(self) -> bool:
        return not self._keys

    def expect(self, call_id: Any, key: str) -> None:
        """A call `call_id` to `key` is about to be handled for the caller."""
        self._keys[call_id] = key

    def cancelled(self, call_id: Any) -> bool:
        """The caller's process cancelled `call_id` (its result is not sent back)."""
        return self._keys.pop(call_id, None) is not None

    def send_room_call(self, call: dict[str, Any]) -> None:
        if call.get("type") == "result":
            key = self._keys.pop(call.get("id"), None)
            if key is not None:
                message = {"kind": "result", "room": self.room, "key": key, "call": call}
                self._link.send(self.process, message)
        else:
            log.debug("cluster: not forwarding %r to %s: %s", call.get("type"), self.process, call)
        if not self._keys:
            self._on_idle(self)


class RoomCallProxies:
    """The proxies of one room open here, and the forwarded messages they handle."""

    def __init__(self, room: Room, link: CallLink) -> None:
        self.room = room
        self._link = link
        #: process -> key -> the peer of that process's offer.
        self._offerers: dict[str, dict[str, RemoteOfferer]] = {}
        #: (process, participant) -> the caller of calls forwarded from that process.
        self._callers: dict[tuple[str, str], RemoteCaller] = {}

    def hold_offers(self, process: str, toolkits: dict[str, Any]) -> None:
        """List `process`'s toolkits in the room, each called through a `RemoteOfferer`."""
        offerers = self._offerers.setdefault(process, {})

        def peer_for(key: str) -> RemoteOfferer:
            offerer = offerers[key] = RemoteOfferer(self._link, self.room.name, process, key)
            return offerer

        self.room.calls.set_remote_offers(process, toolkits, peer_for)
        for key in [key for key in offerers if key not in toolkits]:
            del offerers[key]

    def drop(self, process: str) -> None:
        """`process` is gone: its toolkits and the calls it forwarded here end."""
        self.room.calls.drop_remote_offers(process)
        self._offerers.pop(process, None)
        for key, caller in list(self._callers.items()):
            if key[0] == process:
                del self._callers[key]
                self.room.calls.peer_left(caller)

    def arrived(self, kind: str, sender: str, key: str, message: dict[str, Any]) -> None:
        """Handle a call, a cancel or a result `sender` forwarded for this room."""
        calls = self.room.calls
        if kind == "result":
            offerer = self._offerers.get(sender, {}).get(key)
            call = message.get("call")
            if offerer is not None and isinstance(call, dict):
                offerer.answered(call.get("id"))
                calls.handle(offerer, call, len(json.dumps(call)))
        elif kind == "call":
            self._call_arrived(sender, key, message)
        elif kind == "cancel":
            caller = self._callers.get((sender, str(message.get("caller"))))
            if caller is not None and caller.cancelled(message.get("id")):
                calls.handle(caller, {"type": "cancel", "id": message.get("id")}, 0)
                self._idle(caller)

    def _call_arrived(self, sender: str, key: str, message: dict[str, Any]) -> None:
        call, caller_id = message.get("call"), message.get("caller")
        if not isinstance(call, dict) or not isinstance(caller_id, str):
            return
        caller = self._callers.get((sender, caller_id))
        if caller is None:
            caller = RemoteCaller(self._link, self.room.name, sender, caller_id, self._idle)
            self._callers[(sender, caller_id)] = caller
        routed = {
            "type": "call",
            "id": call.get("id"),
            "toolkit": key,
            "tool": call.get("tool"),
            "arguments": call.get("arguments", {}),
        }
        if "timeout" in call:
            routed["timeout"] = call["timeout"]
        caller.expect(call.get("id"), key)
        self.room.calls.handle(caller, routed, len(json.dumps(routed)))

    def _idle(self, caller: RemoteCaller) -> None:
        if caller.idle and self._callers.get((caller.process, caller.caller)) is caller:
            del self._callers[(caller.process, caller.caller)]


def refuse_call(link: CallLink, sender: str, message: dict[str, Any]) -> None:
    """Answer a call forwarded for a room not open here (so neither is its offer)."""
    call = message.get("call")
    if message.get("kind") != "call" or not isinstance(call, dict):
        return
    reply = {"type": "result", "id": call.get("id"), "reason": "offerer-left"}
    reply["error"] = "the participant offering the tool left"
    back = {"kind": "result", "room": message.get("room"), "key": message.get("key")}
    link.send(sender, {**back, "call": reply})


def forwarded(data: bytes) -> tuple[str, str, str, str, dict[str, Any]] | None:
    """(kind, room, key, sender, message) of a message on a calls channel, or None."""
    try:
        message = json.loads(data)
        kind, room, key, sender = (message[k] for k in ("kind", "room", "key", "from"))
    except (ValueError, KeyError, TypeError):
        log.warning("cluster: skipping a malformed forwarded room call")
        return None
    if not all(isinstance(value, str) for value in (kind, room, key, sender)):
        return None
    return kind, room, key, sender, message
