"""An OpenAI Agents SDK agent in a meshroom room, through `meshroom mcp`, while Ann types.

python examples/mcp_openai_agents.py                      # offline: a scripted model
python examples/mcp_openai_agents.py --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b
"""

from __future__ import annotations

from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from agents.mcp import MCPServerStdio
from mcp_room import MESHROOM, TASK, main, meshroom_mcp_args
from openai import AsyncOpenAI


async def writer(room_url: str, base_url: str, model: str, api_key: str) -> str:
    set_tracing_disabled(True)  # no traces leave this machine
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    llm = OpenAIChatCompletionsModel(model=model, openai_client=client)
    room = MCPServerStdio({"command": MESHROOM, "args": meshroom_mcp_args(room_url)},
                          client_session_timeout_seconds=30)  # fmt: skip
    async with client, room:
        agent = Agent(name="Writer", instructions="Edit the room's documents.", mcp_servers=[room],
                      model=llm)  # fmt: skip
        return str((await Runner.run(agent, TASK)).final_output)


if __name__ == "__main__":
    main(writer)
