"""A pydantic-ai agent in a meshroom room, through `meshroom mcp`, while Ann types.

python examples/mcp_pydantic_ai.py                        # offline: a scripted model
python examples/mcp_pydantic_ai.py --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b
"""

from __future__ import annotations

from fastmcp.client.transports import StdioTransport
from mcp_room import MESHROOM, TASK, main, meshroom_mcp_args
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider


async def writer(room_url: str, base_url: str, model: str, api_key: str) -> str:
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    llm = OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client))
    room = MCPToolset(StdioTransport(MESHROOM, meshroom_mcp_args(room_url)))
    agent = Agent(llm, instructions="Edit the room's documents.", toolsets=[room])
    async with client, agent:
        return str((await agent.run(TASK)).output)


if __name__ == "__main__":
    main(writer)
