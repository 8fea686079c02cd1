"""A worker agent: takes the items of a room's work queue one by one, one run each."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ._loop import AgentResult

__all__ = ["work_through"]


class Worker(Protocol):
    """What works a queue (`Agent` has it): a room peer and runs."""

    client: Any

    async def run(self, instruction: str) -> AgentResult: ...


async def work_through(
    agent: Worker, queue: str, *, results: str | None = None, limit: int | None = None
) -> int:
    """Run `agent` once per item of `queue` (see `Agent.work_queue`); return how many."""
    done = 0
    async with agent.client.consume(queue) as items:
        async for item in items:
            task = item.item if isinstance(item.item, str) else json.dumps(item.item)
            result = await agent.run(task)
            if results is not None:
                answer = {"item": item.item, "answer": result.text, "completed": result.completed}
                await agent.client.send_to_queue(results, answer)
            await item.ack()  # after the work: an unfinished item goes to another worker
            done += 1
            if limit is not None and done >= limit:
                break
    return done
