"""An agent and a person co-edit one document, live, and their edits merge.

Starts a meshroom server on 127.0.0.1, a person-like client ("Ann") who keeps
typing notes at the end of her paragraph, and an agent ("Editor") that reads
the document, adds a "Next steps" section, fixes a date and rewrites a
sentence, through tool calls, while Ann types. Prints the agent's tool calls
as they happen and the document before and after: Ann's typing and the
agent's edits are both there.

The model is scripted by default (an OpenAI-compatible server in this process
answers with the tool calls a model would make), so it runs offline in a few
seconds. Point it at a real model with an OpenAI-compatible endpoint::

    python examples/agent_coedit.py
    python examples/agent_coedit.py --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b
    OPENAI_API_KEY=... python examples/agent_coedit.py --base-url https://api.openai.com/v1 \\
        --model gpt-4.1-mini
"""

from __future__ import annotations

import argparse
import re
import socket
from typing import Any

import anyio
import uvicorn

from meshdoc import ChildProperty, ElementType, MeshSchema, ValueProperty
from meshroom import RoomClient, Server, create_app
from meshroom.agents import Agent, AgentEvent, OpenAILLM
from meshroom.agents.toolkits import documents_toolkit, room_toolkit
from meshroom.testing import ScriptedLLMServer, ScriptedRequest, call, reply, tool_calls

PATH = "notes/plan"
INSTRUCTION = (
    "Tidy notes/plan: change the launch day from Friday to Monday, rewrite the risks "
    "sentence to be specific, and add a 'Next steps' heading (level 2) followed by one "
    "paragraph with two next steps."
)

SCHEMA = MeshSchema(
    "doc",
    elements=[
        ElementType("doc", properties=[ChildProperty("children", ["heading", "paragraph"])]),
        ElementType(
            "heading",
            properties=[
                ValueProperty("level", type="number", enum=[1, 2, 3], required=True),
                ChildProperty("children", []),
            ],
            rich_text=True,
        ),
        ElementType("paragraph", properties=[ChildProperty("children", [])], rich_text=True),
    ],
)


def block(tag: str, text: str, **attributes: Any) -> dict[str, Any]:
    body = {"$id": None, **attributes, "children": [{"$text": [{"insert": text, "marks": []}]}]}
    return {tag: body}


def ids_by_first_word(outline: str) -> dict[str, str]:
    """`read_document`'s outline lines `[id] tag: 'Text…'` → {first word: id}."""
    found = re.findall(r"\[([^\]]+)\] \w+[^:]*: [\"'](\w+)", outline)
    return {word: element_id for element_id, word in found}


def scripted_model() -> list[Any]:
    """What a model would do for INSTRUCTION: read, then edit by $id and exact text."""

    def edit(request: ScriptedRequest) -> Any:
        ids = ids_by_first_word(request.tool_results()[0])
        return tool_calls(
            call("replace_text", path=PATH, id=ids["Launch"], find="Friday", replace="Monday",
                 occurrence=None),
            call("rewrite_text", path=PATH, id=ids["Risks"],
                 text="Risks: the payment provider's sandbox, and load on launch day."),
            call("insert_elements", path=PATH, position="after", target_id=ids["Risks"],
                 elements=[block("heading", "Next steps", level=2),
                           block("paragraph", "Book the load test; confirm the provider.")]),
        )  # fmt: skip

    return [
        tool_calls(call("read_document", path=PATH, format="outline")),
        edit,
        reply("Moved the launch to Monday, made the risks specific, added next steps."),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def show(document: Any, title: str) -> None:
    print(f"\n--- {title} ---")
    for element in document.root.get_child_elements():
        prefix = "#" * int(element.get_attribute("level", 0) or 0)
        print(f"{prefix + ' ' if prefix else ''}{element.text}")


async def ann_types(client: RoomClient, paragraph_id: str, stop: anyio.Event) -> int:
    """Ann keeps adding words to her own paragraph until told to stop."""
    words = ["also", "check", "the", "dashboard", "and", "the", "release", "notes"]
    document = client.open_documents[PATH]
    typed = 0
    while not stop.is_set():
        text = document.get_node_by_id(paragraph_id).text
        text.insert(len(text), " " + words[typed % len(words)])
        typed += 1
        await anyio.sleep(0.02)
    return typed


async def main(base_url: str | None, model: str, api_key: str | None) -> None:
    port = free_port()
    server = Server(grace_period=0.2)
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning",
                            ws="websockets-sansio", ws_per_message_deflate=False)  # fmt: skip
    web = uvicorn.Server(config)
    url = f"ws://127.0.0.1:{port}"
    async with anyio.create_task_group() as group:
        group.start_soon(web.serve)
        while not web.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await anyio.sleep(0.01)
        scripted = ScriptedLLMServer(scripted_model()) if base_url is None else None
        if scripted is not None:
            scripted.start()
        try:
            await co_edit(url, scripted.base_url if scripted else base_url, model, api_key)
        finally:
            if scripted is not None:
                scripted.stop()
            web.should_exit = True


async def co_edit(url: str, base_url: str | None, model: str, api_key: str | None) -> None:
    async with RoomClient(url, "demo", name="Ann", id="ann") as ann:
        document = await ann.open(PATH, SCHEMA)
        with document.transaction():
            document.root.append_json(block("heading", "Launch plan", level=1))
            document.root.append_json(block("paragraph", "Launch the beta on Friday."))
            document.root.append_json(block("paragraph", "Risks are unknown."))
            notes = document.root.append_json(block("paragraph", "Ann's notes:")).id
        show(document, "before")

        def progress(event: AgentEvent) -> None:
            if event.kind == "tool_call":
                print(f"  agent → {event.summary}")
            elif event.kind == "tool_result" and event.error:
                print(f"  agent ✗ {event.summary}")

        print("\nAnn keeps typing while the agent works:")
        llm = OpenAILLM(model, base_url=base_url, api_key=api_key)
        agent = Agent("Editor", toolkits=[documents_toolkit(SCHEMA), room_toolkit()], llm=llm,
                      on_event=progress, max_steps=12)  # fmt: skip
        stop = anyio.Event()
        typed: list[int] = []

        async def type_notes() -> None:
            typed.append(await ann_types(ann, notes, stop))

        async with llm, agent.connect(url, "demo"), anyio.create_task_group() as people:
            people.start_soon(type_notes)
            result = await agent.run(INSTRUCTION)
            await anyio.sleep(0.1)
            stop.set()
            agent_copy = agent.client.open_documents[PATH]
            with anyio.fail_after(5):  # both replicas converge
                await ann.wait_for(lambda: agent_copy.to_json() == document.to_json())
        print(f"\nagent: {result.text} ({result.steps} steps, stop: {result.stop_reason})")
        show(document, "after (seen by Ann)")
        problems = SCHEMA.validate(document)
        print(f"\nAnn typed {typed[0]} words while the agent edited; schema problems: {problems}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: scripted model)")
    parser.add_argument("--model", default="scripted", help="model name at the endpoint")
    parser.add_argument("--api-key", help="endpoint key (default: OPENAI_API_KEY)")
    options = parser.parse_args()
    anyio.run(main, options.base_url, options.model, options.api_key)
