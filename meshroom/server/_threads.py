"""`RoomThreads`: an agent's conversation in a thread, saved with the room's activity.

An agent keeps one conversation per thread of room messages. So that a thread can go on
after the room closed (or the agent restarted), the agent saves it after each answer and
loads it when a thread it does not hold comes up (docs/room-document.md)::

    -> {"type": "thread.save", "thread": T, "messages": [...]}
    <- {"type": "thread.saved", "thread": T}
    -> {"type": "thread.load", "thread": T}
    <- {"type": "thread", "thread": T, "messages": [...] | null}

A save is an activity event of the room (``thread.saved``: agent, thread, messages), so the
activity log keeps it through the storage provider; a load asks the extensions
(`Extension.on_load_thread`), which read it back. Threads are the saving participant's
own: the agent is the connection's participant, never a field of the call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ._hooks import Extension, LoadThreadPayload
from ._presence import MAX_MESSAGE_ID

if TYPE_CHECKING:
    from ._peer import CallPeer

__all__ = ["MAX_THREAD_BYTES", "RoomThreads", "ThreadLoad", "ThreadLoader"]

log = logging.getLogger("meshroom.server")

#: Largest saved conversation, in bytes of its room call.
MAX_THREAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ThreadLoad:
    """A participant asks for its saved conversation (`payload`); `reply` answers it."""

    payload: LoadThreadPayload
    #: Sends the answer (a room call) to the asking participant.
    reply: Callable[[dict[str, Any]], None]


class RoomThreads:
    """Thread saves and loads of one room (see the module docstring).

    Args:
        room: The room's name.
        record: Records an activity event of the room (`Room.record`).
        request_load: Hands a load to the server's task that asks the extensions; None:
            nothing can load (every load answers ``null``).
    """

    def __init__(
        self,
        room: str,
        record: Callable[..., None],
        request_load: Callable[[ThreadLoad], None] | None = None,
    ) -> None:
        self.room = room
        self._record = record
        self.request_load = request_load

    def handle(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        thread = call.get("thread")
        if not isinstance(thread, str) or not 0 < len(thread) <= MAX_MESSAGE_ID:
            self._error(peer, f"'thread' must be a string of 1 to {MAX_MESSAGE_ID} characters")
            return
        participant = peer.access.participant_id
        if call["type"] == "thread.save":
            messages = call.get("messages")
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                self._error(peer, "'messages' must be a list of objects", thread)
                return
            if size > MAX_THREAD_BYTES:
                self._error(peer, f"a thread of {size} bytes exceeds {MAX_THREAD_BYTES}", thread)
                return
            self._record("thread.saved", agent=participant, thread=thread, messages=messages)
            peer.send_room_call({"type": "thread.saved", "thread": thread})
            return
        if self.request_load is None:
            peer.send_room_call({"type": "thread", "thread": thread, "messages": None})
            return
        payload = LoadThreadPayload(self.room, participant, thread)
        self.request_load(ThreadLoad(payload, peer.send_room_call))

    @staticmethod
    def _error(peer: CallPeer, message: str, thread: Any = None) -> None:
        peer.send_room_call({"type": "error", "error": message, "request": thread})


class ThreadLoader:
    """Answers thread loads of every room, one at a time, from the extensions (one task).

    Loads arrive in transport callbacks, where no task can start and no hook can be
    awaited: `request` only queues them (it never blocks), and `run` asks the extensions.
    """

    def __init__(self, extensions: Sequence[Extension]) -> None:
        self._extensions = extensions
        self._send, self._receive = anyio.create_memory_object_stream[ThreadLoad](math.inf)

    def request(self, load: ThreadLoad) -> None:
        self._send.send_nowait(load)

    async def run(self) -> None:
        async with self._receive:
            async for load in self._receive:
                messages = None
                for extension in self._extensions:
                    try:
                        messages = await extension.on_load_thread(load.payload)
                    except Exception:
                        log.exception("on_load_thread of %s failed", type(extension).__name__)
                        continue
                    if messages is not None:
                        break
                load.reply({"type": "thread", "thread": load.payload.thread, "messages": messages})
