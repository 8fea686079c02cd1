"""How an agent answers the room: the messages addressed to it, one conversation per thread.

A message is for the agent when it is sent `to` its id, or to everyone starting with
``@Name``. Its thread is the message's `thread`, or the message's own id when it starts
one; the answer goes back in that thread, to the asker, streamed while it is written.
A ``stop`` (or ``{"type": "agent.stop"}``) ends the running answer at its next step
boundary instead of starting one.

Runs are taken one at a time, in the order they were asked (`Agent.run` holds one lock):
the agent has one train of thought and one cursor, and two threads never interleave.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._conversation import AnswerStream, stop_request

#: The agent is an `Agent` (`_agent`), named `Any` here: `_agent` imports this module.
Agent = Any

__all__ = ["addressed_text", "answer", "follow_messages"]

logger = logging.getLogger("meshroom.agents")


def addressed_text(agent_id: str, agent_name: str, message: dict[str, Any]) -> str | None:
    """The text of `message` for the agent (its mention removed), or None if not for it."""
    if message.get("from") == agent_id:
        return None
    text = message.get("text")
    if message.get("to") == agent_id:
        return text if isinstance(text, str) else ""
    mention = f"@{agent_name}"
    if (
        message.get("to") is None
        and isinstance(text, str)
        and text.lower().startswith(mention.lower())
    ):
        return text[len(mention) :].lstrip(" ,:")
    return None


async def follow_messages(agent: Agent, group: TaskGroup, *, task_status: TaskStatus[None]) -> None:
    """Answer the room messages addressed to `agent` until cancelled."""
    from pycrdt import Array, ArrayEvent

    send, receive = anyio.create_memory_object_stream[dict[str, Any]](100)
    messages = agent.client.ydoc("").get("messages", type=Array)

    def observe(event: ArrayEvent) -> None:
        for part in event.delta:
            for item in part.get("insert", ()):
                if isinstance(item, dict) or hasattr(item, "to_py"):
                    data = item.to_py() if hasattr(item, "to_py") else item
                    try:
                        send.send_nowait(dict(data))
                    except anyio.WouldBlock:
                        logger.warning("agent %s dropped a room message", agent.name)

    subscription = messages.observe(observe)
    task_status.started()
    try:
        async with receive:
            async for message in receive:
                text = addressed_text(agent.id, agent.name, message)
                if text is None:
                    continue
                undo = stop_request(message, text)
                if undo is not None:
                    agent.stop(undo=undo)
                elif text:
                    group.start_soon(answer, agent, text, message)
    finally:
        messages.unobserve(subscription)


async def answer(agent: Agent, instruction: str, message: dict[str, Any]) -> None:
    """Answer one message in its thread, streaming the answer; post failures as answers."""
    sender = message.get("from")
    thread = message.get("thread") or message.get("id") or uuid.uuid4().hex[:16]
    stream = AnswerStream(agent.client, to=sender, thread=thread) if agent.stream else None
    try:
        history = await agent.threads.history(thread, agent.client)
        result = await agent.run(
            instruction, on_behalf_of=sender, history=history, stream=stream, thread=thread
        )
        text = result.text or f"I stopped before finishing ({result.stop_reason})."
        await agent.threads.remember(thread, result.messages, agent.client)
    except Exception as error:
        logger.warning("agent %s failed to answer", agent.name, exc_info=True)
        text = f"I could not do that: {error}"
    if stream is None or not stream.finish(text):
        await agent._post(text, to=sender, thread=thread)
