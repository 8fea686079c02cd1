"""`Conversations`: a participant's saved threads and streamed answers, over room calls.

What an agent needs to keep a conversation per thread beyond one room session (save it
after each answer, load it when a thread it does not hold comes up) and to show an
answer while it is written (a `stream` room call per piece, the last one ``done``). The
server keeps the saves with the room's activity and answers loads from the extensions
(docs/room-document.md). Shared by `RoomClient` and the agents' in-process peer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from .._exceptions import ClientError

__all__ = ["Conversations"]

#: Seconds to wait for the server to save or load a thread.
THREAD_WAIT = 10.0


class Conversations:
    """Thread saves, loads and answer streams of one participant (see the module docstring)."""

    def __init__(self, send: Callable[[dict[str, Any]], bool]) -> None:
        self._send = send
        self._waiting: dict[tuple[str, str], list[tuple[anyio.Event, list[Any]]]] = {}

    async def _ask(self, call: dict[str, Any], answer: str) -> Any:
        key = (answer, call["thread"])
        done, box = anyio.Event(), []
        self._waiting.setdefault(key, []).append((done, box))
        try:
            if not self._send(call):
                raise ClientError("not connected to the room", reason="disconnected")
            with anyio.move_on_after(THREAD_WAIT):
                await done.wait()
        finally:
            waiters = self._waiting.get(key, [])
            if (done, box) in waiters:
                waiters.remove((done, box))
            if not waiters:
                self._waiting.pop(key, None)
        if not box:
            raise ClientError(f"no answer from the room for thread {call['thread']!r}")
        return box[0]

    async def save(self, thread: str, messages: list[dict[str, Any]]) -> None:
        """Save our conversation `thread` with the room's activity.

        Raises:
            ClientError: not connected, refused (size, name), or no answer in time.
        """
        reply = await self._ask(
            {"type": "thread.save", "thread": thread, "messages": messages}, "thread.saved"
        )
        if reply.get("type") == "error":
            raise ClientError(f"the room refused thread {thread!r}: {reply.get('error')}")

    async def load(self, thread: str) -> list[dict[str, Any]] | None:
        """Our conversation `thread` as last saved, or None if there is none."""
        reply = await self._ask({"type": "thread.load", "thread": thread}, "thread")
        messages = reply.get("messages")
        return messages if isinstance(messages, list) else None

    def stream(
        self,
        message_id: str,
        text: str,
        *,
        to: str | None = None,
        thread: str | None = None,
        done: bool = False,
    ) -> bool:
        """Show `text` as the answer `message_id` so far (`done`: post it as a message)."""
        call: dict[str, Any] = {"type": "stream", "id": message_id, "text": text, "to": to}
        call["thread"] = thread
        if done:
            call["done"] = True
        return self._send(call)

    def receive(self, call: dict[str, Any]) -> bool:
        """Take a thread reply; False if `call` is not one."""
        kind = call.get("type")
        if kind in ("thread", "thread.saved"):
            key = (kind, str(call.get("thread")))
        elif kind == "error" and (("thread.saved", str(call.get("request"))) in self._waiting):
            key = ("thread.saved", str(call.get("request")))
        else:
            return False
        for done, box in self._waiting.get(key, [])[:1]:
            box.append(call)
            done.set()
        return True
