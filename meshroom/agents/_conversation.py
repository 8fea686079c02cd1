"""What an agent keeps of a conversation: threads, the answer being written, its status, a stop.

- **Threads.** Room messages carry a thread; the agent keeps one conversation per thread
  (questions, answers, tool calls and results, in Chat Completions shape), so "now make
  it shorter" is read with what came before. A thread is trimmed to a token budget, the
  dropped turns replaced by one line that says what they were; after each answer it is
  saved with the room's activity and loaded back when a thread the agent does not hold
  comes up (after a restart, or once the room closed).
- **Streaming.** An answer appears in the room as the model writes it (the room
  document's `streams` map), at most every `STREAM_INTERVAL`, then as a message.
- **Status.** The agent's awareness on the room document says what it is doing:
  ``{"status": {"state": "thinking" | "calling" | "waiting" | "idle", "tool"?, "path"?,
  "waitingFor"?, "thread"?}}``.
- **Stop.** A person stops the running answer with a room message to the agent
  (``stop``, or ``{"type": "agent.stop", "undo": true}`` to undo what it did so far).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AnswerStream",
    "StopSignal",
    "ThreadMemory",
    "calling_status",
    "sendable",
    "stop_request",
    "trim_history",
    "undo_run",
]

#: Where a tool that edits documents records how to undo each edit of the run
#: (`ToolContext.state[UNDO_KEY]`: callables, oldest first).
UNDO_KEY = "undo"

logger = logging.getLogger("meshroom.agents")

#: Seconds between two updates of an answer being written.
STREAM_INTERVAL = 0.1
#: Tokens of history an agent sends with a thread's next question (about 4 characters each).
DEFAULT_HISTORY_TOKENS = 8000
#: Characters of each dropped question or answer kept in the summary line.
_SUMMARY_CHARS = 160


def _tokens(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False)) // 4 + 1


def _turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split a conversation into turns, each starting with a user message."""
    turns: list[list[dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def trim_history(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The latest whole turns of `messages` that fit `budget` tokens, after a summary line
    of the turns dropped (their questions and answers, shortened), if any were."""
    turns = _turns([m for m in messages if not m.get("summary")])
    kept: list[list[dict[str, Any]]] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(_tokens(message) for message in turn)
        if kept and used + cost > budget:
            break
        kept.insert(0, turn)
        used += cost
    dropped = turns[: len(turns) - len(kept)]
    earlier = [m for m in messages if m.get("summary")]  # a summary kept from before
    if not dropped and not earlier:
        return [message for turn in kept for message in turn]
    lines = [str(earlier[0]["content"])] if earlier else ["Earlier in this thread:"]
    for turn in dropped:
        question = str(turn[0].get("content") or "")[:_SUMMARY_CHARS]
        answers = [m for m in turn if m.get("role") == "assistant" and m.get("content")]
        answer = str(answers[-1]["content"])[:_SUMMARY_CHARS] if answers else "(no answer)"
        lines.append(f"- asked: {question} / answered: {answer}")
    summary = {"role": "user", "content": "\n".join(lines), "summary": True}
    return [summary, {"role": "assistant", "content": "Noted."}, *[
        message for turn in kept for message in turn
    ]]  # fmt: skip


def sendable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as a model takes it (without our own bookkeeping keys)."""
    return [{k: v for k, v in m.items() if k != "summary"} for m in messages]


class ThreadMemory:
    """The conversations of one agent, by thread, saved with the room's activity."""

    def __init__(self, budget: int = DEFAULT_HISTORY_TOKENS) -> None:
        self.budget = budget
        self._threads: dict[str, list[dict[str, Any]]] = {}

    def __contains__(self, thread: object) -> bool:
        return thread in self._threads

    async def history(self, thread: str, peer: Any) -> list[dict[str, Any]]:
        """The thread's conversation so far (loaded from the room if not held here)."""
        if thread not in self._threads:
            loaded = None
            conversations = getattr(peer, "conversations", None)
            if conversations is not None:
                try:
                    loaded = await conversations.load(thread)
                except Exception:  # no saved thread to go on from: start afresh
                    logger.debug("could not load thread %s", thread, exc_info=True)
            self._threads[thread] = list(loaded or [])
        return trim_history(self._threads[thread], self.budget)

    async def remember(self, thread: str, messages: list[dict[str, Any]], peer: Any) -> None:
        """Keep the thread's conversation (trimmed) and save it with the room's activity."""
        kept = trim_history(messages, self.budget)
        self._threads[thread] = kept
        conversations = getattr(peer, "conversations", None)
        if conversations is None:
            return
        try:
            await conversations.save(thread, kept)
        except Exception:  # saving is for later sessions: never fail the answer for it
            logger.warning("could not save thread %s", thread, exc_info=True)


class AnswerStream:
    """An answer shown in the room while the model writes it (see the module docstring)."""

    def __init__(self, peer: Any, *, to: str | None, thread: str | None) -> None:
        self.id = uuid.uuid4().hex[:16]
        self._conversations = getattr(peer, "conversations", None)
        self.to = to
        self.thread = thread
        self._text: list[str] = []
        self._sent_at = 0.0

    @property
    def text(self) -> str:
        return "".join(self._text)

    def on_text(self, piece: str) -> None:
        self._text.append(piece)
        now = time.monotonic()
        if now - self._sent_at >= STREAM_INTERVAL:
            self._sent_at = now
            self._send(self.text, done=False)

    def reset(self) -> None:
        """The model's words went with tool calls, not into the answer: start it again."""
        if self._text:
            self._text.clear()
            self._send("", done=False)

    def finish(self, text: str) -> bool:
        """Post the whole answer as a room message with this stream's id."""
        return self._send(text, done=True)

    def _send(self, text: str, *, done: bool) -> bool:
        if self._conversations is None:
            return False
        return bool(
            self._conversations.stream(self.id, text, to=self.to, thread=self.thread, done=done)
        )


@dataclass
class StopSignal:
    """A request to stop the running answer, checked at each step boundary."""

    requested: bool = False
    undo: bool = False

    def request(self, *, undo: bool) -> None:
        self.requested = True
        self.undo = self.undo or undo

    def clear(self) -> None:
        self.requested = False
        self.undo = False


def stop_request(message: dict[str, Any], text: str | None) -> bool | None:
    """None if `message` is not a stop; else whether it asks to undo what was done.

    `text` is the message's text addressed to the agent (its mention removed).
    """
    data = message.get("json")
    if isinstance(data, dict) and data.get("type") == "agent.stop":
        return bool(data.get("undo"))
    if isinstance(text, str):
        words = text.strip().lower().rstrip(".!").split()
        if words[:1] == ["stop"]:
            return "undo" in words
    return None


def calling_status(event: Any, offerers: dict[str, str], thread: str | None) -> dict[str, Any]:
    """The status for a tool call: ``waiting`` for a person's tool, ``calling`` otherwise."""
    try:
        arguments = json.loads(event.arguments or "{}")
    except ValueError:
        arguments = {}
    path = arguments.get("path") if isinstance(arguments, dict) else None
    status: dict[str, Any] = {"tool": event.name, "path": path, "thread": thread}
    offerer = offerers.get(event.name or "")
    if offerer is not None:
        return {"state": "waiting", "waitingFor": offerer, **status}
    return {"state": "calling", **status}


def undo_run(context: Any) -> int:
    """Undo the edits recorded in `context` during one run, newest first; how many."""
    undone = 0
    for undo in reversed(context.state.get(UNDO_KEY, [])):
        try:
            if undo():
                undone += 1
        except Exception:  # a document closed meanwhile: undo the others
            logger.warning("could not undo an edit of a stopped run", exc_info=True)
    context.state[UNDO_KEY] = []
    return undone
