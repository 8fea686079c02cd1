"""`RoomCalls`: toolkits offered by participants and tool calls routed between them.

A participant offers a toolkit on its room-document connection; the server lists it
in the room document's `toolkits` map under ``"OFFERER/NAME"`` (the offerer's id comes
from its access, so nobody offers under another's name) and withdraws it when that
connection closes. A call goes to the server, which checks the caller's grants and
sizes, gives the call an id of its own and forwards it to the offering connection;
the result comes back the same way, under the caller's id. A timeout, a cancel, or
the offerer leaving ends the call with a result that says why (docs/room-document.md
lists the reasons), so a caller never waits forever.

The server does not run tools or read schemas beyond their shape: the offerer
validates arguments against its own schema, as a local toolkit does.

In a cluster, toolkits offered on another process are *remote offers*
(`set_remote_offers`): their peer forwards each call to that process, which routes it
again to its offering connection (checking sizes and keeping a deadline of its own,
sent along as ``timeout``) and sends the result back, its reason intact.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._answers import AnswerStreams
from ._deadlines import CallDeadlines
from ._offers import CallError, check_offer
from ._queues import RoomQueues

if TYPE_CHECKING:
    from ._peer import CallPeer
    from ._presence import Presence
    from ._threads import RoomThreads

__all__ = ["CallDeadlines", "CallLimits", "RoomCalls"]

log = logging.getLogger("meshroom.server")


@dataclass(frozen=True)
class CallLimits:
    """Bounds on what one participant may offer and have in flight."""

    #: Largest arguments or result of one call, in bytes of JSON.
    max_call_bytes: int = 1024 * 1024
    #: Calls one connection may have waiting for a result.
    max_pending_calls: int = 64
    #: Default seconds a call waits for its result, and the most a caller may ask for.
    default_timeout: float = 60.0
    max_timeout: float = 600.0
    #: Toolkits one connection may offer, tools in one toolkit, bytes of one offer.
    max_toolkits: int = 16
    max_tools: int = 128
    max_offer_bytes: int = 256 * 1024


@dataclass
class _Offer:
    peer: CallPeer
    key: str
    tools: frozenset[str]
    #: The process offering it, for an offer made on another process of a cluster.
    process: str | None = None


@dataclass
class _Call:
    deadline: float
    id: int
    caller: CallPeer = field(compare=False)
    caller_id: Any = field(compare=False)
    offer: _Offer = field(compare=False)


class RoomCalls:
    """Offers and calls of one room (see the module docstring)."""

    def __init__(
        self,
        presence: Presence,
        limits: CallLimits | None = None,
        *,
        deadlines: CallDeadlines | None = None,
    ) -> None:
        self._presence = presence
        self.limits = limits or CallLimits()
        #: Where call deadlines are kept (the server's, which one task watches for every room).
        self._deadlines = deadlines if deadlines is not None else CallDeadlines()
        self._offers: dict[str, _Offer] = {}
        #: Offers made on other processes of a cluster: process id -> key -> offer.
        self._remote: dict[str, dict[str, _Offer]] = {}
        self._calls: dict[int, _Call] = {}
        #: The room's work queues (their calls travel the same way).
        self.queues = RoomQueues(presence)
        #: Answers being written, shown in the room as they grow.
        self.answers = AnswerStreams(presence)
        #: Agents' saved conversations (the room sets it: saving records activity).
        self.threads: RoomThreads | None = None
        #: Each caller's pending calls, by the caller's own id.
        self._by_caller: dict[int, dict[Any, int]] = {}
        self._ids = itertools.count(1)

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        """Act on one room call from `peer` (`size`: its encoded bytes). Never raises for
        bad input: the peer gets an error reply and nothing changes."""
        kind = call["type"]
        if kind in _QUEUE_CALLS:
            self.queues.handle(peer, call, size)
            return
        if kind == "stream":
            self.answers.handle(peer, call, size)
            return
        if kind in ("thread.save", "thread.load") and self.threads is not None:
            self.threads.handle(peer, call, size)
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._error(peer, call, f"unknown room call type {kind!r}")
            return
        try:
            handler(self, peer, call, size)
        except CallError as error:
            if kind == "call" and _is_id(call.get("id")):
                self._reply_result(peer, call.get("id"), error=str(error), reason=error.reason)
            else:
                self._error(peer, call, str(error))

    def _error(self, peer: CallPeer, call: dict[str, Any], message: str) -> None:
        request = call.get("id", call.get("toolkit"))
        if not _is_id(request):
            request = None
        peer.send_room_call({"type": "error", "error": message, "request": request})

    # -- offers ------------------------------------------------------------------------------

    def _offer(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        if not peer.access.may_offer_tools:
            raise CallError("forbidden", "your grants do not allow offering tools")
        if size > self.limits.max_offer_bytes:
            raise CallError(
                "too-large", f"an offer of {size} bytes exceeds {self.limits.max_offer_bytes}"
            )
        entry = check_offer(peer.access.participant_id, call.get("toolkit"), self.limits.max_tools)
        key = f"{entry['offeredBy']}/{entry['name']}"
        owned = [offer for offer in self._offers.values() if offer.peer is peer]
        if key not in self._offers and len(owned) >= self.limits.max_toolkits:
            raise CallError("too-many", f"at most {self.limits.max_toolkits} toolkits each")
        previous = self._offers.get(key)
        if previous is not None and previous.peer is not peer:
            self._end_calls_to(previous, "offerer-left", "the toolkit was offered again")
        tools = frozenset(tool["name"] for tool in entry["tools"])
        self._offers[key] = _Offer(peer, key, tools)
        self._presence.set_entry("toolkits", key, entry)
        peer.send_room_call({"type": "offered", "toolkit": entry["name"]})

    def _withdraw(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        name = call.get("toolkit")
        key = f"{peer.access.participant_id}/{name}"
        offer = self._offers.get(key)
        if offer is None or offer.peer is not peer:
            raise CallError("unknown-toolkit", f"you offer no toolkit named {name!r}")
        self._remove_offer(offer, "the toolkit was withdrawn")
        peer.send_room_call({"type": "withdrawn", "toolkit": name})

    def _remove_offer(self, offer: _Offer, why: str) -> None:
        del self._offers[offer.key]
        self._presence.remove_entry("toolkits", offer.key)
        self._end_calls_to(offer, "offerer-left", why)

    def set_remote_offers(
        self, process: str, entries: dict[str, Any], peer_for: Callable[[str], CallPeer]
    ) -> None:
        """Hold the toolkits another process lists (its `toolkits` entries, all of them).

        A remote offer's calls go to `peer_for(key)`, which forwards them to `process`.
        An offer that is gone, or whose tools changed, ends its pending calls with
        ``offerer-left``. The entries are listed in the room document's `toolkits`.
        """
        current = self._remote.setdefault(process, {})
        fresh: dict[str, frozenset[str]] = {}
        for key, entry in entries.items():
            try:
                fresh[key] = frozenset(str(tool["name"]) for tool in entry["tools"])
            except (KeyError, TypeError):
                log.warning("skipping a malformed toolkit %r of process %s", key, process)
        for key, offer in list(current.items()):
            if fresh.get(key) != offer.tools:
                del current[key]
                self._end_calls_to(offer, "offerer-left", "the toolkit is no longer offered")
        for key, tools in fresh.items():
            if key not in current:
                current[key] = _Offer(peer_for(key), key, tools, process)
        if not current:
            del self._remote[process]
        self._presence.set_remote(process, "toolkits", {key: entries[key] for key in fresh})

    def drop_remote_offers(self, process: str) -> None:
        """Forget every toolkit of `process` (gone): its pending calls end, ``offerer-left``."""
        for offer in self._remote.pop(process, {}).values():
            self._end_calls_to(offer, "offerer-left", "the process offering the tool is gone")
        self._presence.set_remote(process, "toolkits", {})

    def offers(self) -> dict[str, Any]:
        """The listed toolkits (as the room document's `toolkits` map holds them)."""
        return self._presence.entries("toolkits")

    # -- calls -------------------------------------------------------------------------------

    def _call(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        caller_id = call.get("id")
        if not _is_id(caller_id):
            raise CallError("bad-request", "a call needs an 'id' (a string or a number)")
        if isinstance(caller_id, str) and len(caller_id) > 128:
            raise CallError("bad-request", "a call id is at most 128 characters")
        if not peer.access.may_call_tools:
            raise CallError("forbidden", "your grants do not allow calling tools")
        pending = self._by_caller.setdefault(id(peer), {})
        if caller_id in pending:
            raise CallError("bad-request", f"call {caller_id!r} is already pending")
        if len(pending) >= self.limits.max_pending_calls:
            raise CallError("too-many", f"more than {self.limits.max_pending_calls} calls pending")
        if size > self.limits.max_call_bytes:
            raise CallError(
                "too-large", f"a call of {size} bytes exceeds {self.limits.max_call_bytes}"
            )
        arguments = call.get("arguments", {})
        if not isinstance(arguments, dict):
            raise CallError("bad-request", "'arguments' must be an object")
        offer = self._find_offer(call.get("toolkit"))
        tool = call.get("tool")
        if tool not in offer.tools:
            raise CallError(
                "unknown-tool", f"{offer.key} has no tool {tool!r} (it has {sorted(offer.tools)})"
            )
        timeout = call.get("timeout", self.limits.default_timeout)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise CallError("bad-request", "'timeout' must be a positive number of seconds")
        timeout = min(float(timeout), self.limits.max_timeout)
        routed = _Call(time.monotonic() + timeout, next(self._ids), peer, caller_id, offer)
        self._calls[routed.id] = routed
        pending[caller_id] = routed.id
        self._deadlines.add(routed.deadline, self, routed.id)
        forwarded = {
            "type": "call",
            "id": routed.id,
            "from": peer.access.participant_id,
            "toolkit": offer.key.split("/", 1)[1],
            "tool": tool,
            "arguments": arguments,
        }
        if offer.process is not None:
            forwarded["timeout"] = timeout  # the other process keeps a deadline too
        offer.peer.send_room_call(forwarded)

    def _find_offer(self, toolkit: Any) -> _Offer:
        if not isinstance(toolkit, str):
            raise CallError("bad-request", "'toolkit' must name an offered toolkit")
        offers = self._all_offers()
        offer = offers.get(toolkit)
        if offer is not None:
            return offer
        if "/" not in toolkit:
            named = [offer for key, offer in offers.items() if key.endswith("/" + toolkit)]
            if len(named) == 1:
                return named[0]
            if named:
                keys = sorted(offer.key for offer in named)
                raise CallError(
                    "ambiguous-toolkit", f"several participants offer {toolkit!r}: {keys}"
                )
        raise CallError("unknown-toolkit", f"nobody offers a toolkit {toolkit!r}")

    def _all_offers(self) -> dict[str, _Offer]:
        """Every offer by key: this process's first, then other processes' (by id)."""
        if not self._remote:
            return self._offers
        offers: dict[str, _Offer] = {}
        for process in sorted(self._remote, reverse=True):
            offers.update(self._remote[process])
        offers.update(self._offers)
        return offers

    def _result(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        routed = self._calls.get(call.get("id"))  # type: ignore[arg-type]
        if routed is None or routed.offer.peer is not peer:
            # Late (timed out, cancelled) or never ours: nothing to route.
            raise CallError("bad-request", f"no call {call.get('id')!r} waits for your result")
        self._finish(routed)
        if size > self.limits.max_call_bytes:
            self._reply_result(
                routed.caller,
                routed.caller_id,
                error=f"the result of {size} bytes exceeds {self.limits.max_call_bytes}",
                reason="too-large",
            )
            return
        if "error" in call:
            error = call["error"] if isinstance(call["error"], str) else json.dumps(call["error"])
            details = call.get("details")
            reason = "tool-error"
            if routed.offer.process is not None and isinstance(call.get("reason"), str):
                reason = call["reason"]  # the other process's own verdict (a timeout there…)
            self._reply_result(
                routed.caller, routed.caller_id, error=error, reason=reason, details=details
            )
            return
        routed.caller.send_room_call(
            {"type": "result", "id": routed.caller_id, "result": call.get("result")}
        )

    def _cancel(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        caller_id = call.get("id")
        call_id = self._by_caller.get(id(peer), {}).get(caller_id)
        if call_id is None:
            raise CallError("bad-request", f"no call {caller_id!r} of yours is pending")
        routed = self._calls[call_id]
        self._finish(routed)
        routed.offer.peer.send_room_call({"type": "cancel", "id": routed.id})
        self._reply_result(peer, caller_id, error="the call was cancelled", reason="cancelled")

    def _finish(self, routed: _Call) -> None:
        """Forget `routed` (its deadline stays in `CallDeadlines` and is skipped)."""
        self._calls.pop(routed.id, None)
        pending = self._by_caller.get(id(routed.caller))
        if pending is not None:
            pending.pop(routed.caller_id, None)
            if not pending:
                del self._by_caller[id(routed.caller)]

    def _reply_result(
        self, peer: CallPeer, caller_id: Any, *, error: str, reason: str, details: Any = None
    ) -> None:
        reply: dict[str, Any] = {"type": "result", "id": caller_id, "error": error}
        reply["reason"] = reason
        if details is not None:
            reply["details"] = details
        peer.send_room_call(reply)

    def _end_calls_to(self, offer: _Offer, reason: str, why: str) -> None:
        for routed in [routed for routed in self._calls.values() if routed.offer is offer]:
            self._finish(routed)
            self._reply_result(routed.caller, routed.caller_id, error=why, reason=reason)

    # -- lifecycle ---------------------------------------------------------------------------

    def peer_left(self, peer: CallPeer) -> None:
        """`peer`'s connection closed: withdraw its offers, fail calls to it, drop its own."""
        for offer in [offer for offer in self._offers.values() if offer.peer is peer]:
            self._remove_offer(offer, "the participant offering the tool left")
        for call_id in list(self._by_caller.get(id(peer), {}).values()):
            routed = self._calls[call_id]
            self._finish(routed)
            routed.offer.peer.send_room_call({"type": "cancel", "id": routed.id})
        self.queues.peer_left(peer)
        self.answers.peer_left(peer)

    def pending(self) -> int:
        """Calls waiting for a result."""
        return len(self._calls)

    def expire(self, call_id: int) -> None:
        """End call `call_id` with a ``timeout`` result, if it is still pending."""
        routed = self._calls.get(call_id)
        if routed is None:
            return
        self._finish(routed)
        routed.offer.peer.send_room_call({"type": "cancel", "id": routed.id})
        self._reply_result(
            routed.caller,
            routed.caller_id,
            error="no result before the call's timeout",
            reason="timeout",
        )


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


_QUEUE_CALLS = frozenset({"enqueue", "consume", "ack", "stop"})
_HANDLERS = {
    "offer": RoomCalls._offer,
    "withdraw": RoomCalls._withdraw,
    "call": RoomCalls._call,
    "result": RoomCalls._result,
    "cancel": RoomCalls._cancel,
}
