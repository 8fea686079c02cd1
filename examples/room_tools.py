"""Agents as tools, and a work queue: two ways agents share work in a room.

Starts a meshroom server on 127.0.0.1 and three participants:

- "Summariser", an agent offered to the room as a tool: JSON in (a task), JSON out
  (a title and points, checked against a strict schema);
- "Chat", an agent that Ann asks to summarise; it delegates to Summariser's tool,
  which it sees among its own tools because Summariser offered it in the room;
- "Worker", an agent that takes the items of the room's work queue `translate` one
  by one and sends each answer to the queue `translated`, where Ann reads them.

The models are scripted (an OpenAI-compatible server in this process answers with
what a model would), so it runs offline in a few seconds. With a real model, every
agent uses it::

    python examples/room_tools.py
    python examples/room_tools.py --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b
"""

from __future__ import annotations

import argparse
import json
import socket
from typing import Any

import anyio
import uvicorn

from meshroom import RoomClient, Server, create_app
from meshroom.agents import Agent, OpenAILLM
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

ROOM = "team"
POINTS = {"type": "array", "items": {"type": "string"}}
SUMMARY = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "points": POINTS},
    "required": ["title", "points"],
    "additionalProperties": False,
}  # fmt: skip
SCRIPTS: dict[str, list[Any]] = {
    "Summariser": [
        tool_calls(
            call(
                "submit_result",
                title="Launch plan",
                points=["Ship the beta on Monday", "Load-test first"],
            )
        ),
        reply("Submitted the summary."),
    ],
    "Chat": [
        tool_calls(call("summaries_run", task="Summarise the launch plan in two points.")),
        lambda request: reply("Here is the summary: " + request.tool_results()[0]),
    ],
    "Worker": [reply("Bonjour"), reply("Merci"), reply("Au revoir")],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def share_work(url: str, llms: dict[str, OpenAILLM]) -> None:
    summariser = Agent(
        "Summariser", llm=llms["Summariser"], progress=False, participant_id="summariser"
    )
    chat = Agent("Chat", llm=llms["Chat"], progress=False)
    worker = Agent("Worker", llm=llms["Worker"], progress=False, answer_messages=False)
    async with (
        RoomClient(url, ROOM, name="Ann") as ann,
        summariser.connect(url, ROOM),
        chat.connect(url, ROOM),
        worker.connect(url, ROOM),
    ):
        # 1. An agent as a tool: offered by Summariser, used by Chat like its own.
        toolkit = summariser.as_toolkit("summaries", description="Summarise a document.",
                                        output_schema=SUMMARY)  # fmt: skip
        await summariser.client.offer(toolkit)
        await chat.client.wait_for(
            lambda: any(k.endswith("/summaries") for k in chat.client.toolkits)
        )
        print("offered in the room:", sorted(ann.toolkits))
        answer = await chat.run("Ann asks: summarise the launch plan.")
        print("Chat:", answer.text)

        # 2. A work queue: Ann sends items, the worker takes them one at a time.
        for text in ("Hello", "Thank you", "Goodbye"):
            await ann.send_to_queue("translate", f"Translate into French: {text}")
        print("queued:", int(ann.queues["translate"]["length"]), "items")
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: worker.work_queue("translate", results="translated", limit=3))
            async with ann.consume("translated") as items:
                count = 0
                async for item in items:
                    print(f"translated: {item.item['item']!r} -> {item.item['answer']!r}")
                    await item.ack()
                    count += 1
                    if count == 3:
                        break


async def main(base_url: str | None, model: str, api_key: str | None) -> None:
    port = free_port()
    server = Server(grace_period=0.2)
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning")
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(web.serve)
        while not web.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await anyio.sleep(0.01)
        scripted = {name: ScriptedLLMServer(script) for name, script in SCRIPTS.items()}
        try:
            llms = {}
            for name, scripted_server in scripted.items():
                if base_url is None:
                    scripted_server.start()
                endpoint = base_url or scripted_server.base_url
                llms[name] = OpenAILLM(model, base_url=endpoint, api_key=api_key or "none")
            await share_work(f"ws://127.0.0.1:{port}", llms)
            for llm in llms.values():
                await llm.aclose()
        finally:
            for scripted_server in scripted.values():
                scripted_server.stop()
            web.should_exit = True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible endpoint")
    parser.add_argument("--model", default="scripted")
    parser.add_argument("--api-key", default=None)
    options = parser.parse_args()
    print(json.dumps({"room": ROOM, "model": options.model}))
    anyio.run(main, options.base_url, options.model, options.api_key)
