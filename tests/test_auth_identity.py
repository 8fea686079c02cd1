"""Identity under auth: the token's `sub` is the participant id, and every part follows it.

A client asks for an id in the query; with auth on, the server ignores it and tells the
client the id its token names (the authenticated message of the handshake). The client
then signs messages, awareness and presence with that id, and an agent answers messages
addressed to it. A client without a token is refused at once, with a reason it can show.
"""

from __future__ import annotations

import time

import anyio
import pytest
from conftest import run_server

from meshroom import ClientError, CloseCode, RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.auth import Grant, JwtAuth, mint_token
from meshroom.testing import ScriptedLLMServer, reply

pytestmark = pytest.mark.anyio

SECRET = "identity-secret-" + "x" * 32


def token_for(sub: str, name: str, *, kind: str = "person") -> str:
    return mint_token(
        secret=SECRET, participant_id=sub, name=name, kind=kind, grants=[Grant("team")]
    )


async def test_the_token_names_the_participant_and_the_client_learns_it():
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        RoomClient(
            live.base_url, "team", name="Ann", id="ann", token=token_for("u-7", "Ann")
        ) as ann,
        RoomClient(
            live.base_url, "team", name="Bob", id="bob", token=token_for("u-8", "Bob")
        ) as bob,
    ):
        assert ann.participant_id == "u-7" and ann.id == "u-7"
        with anyio.fail_after(5):
            await bob.wait_for(lambda: "u-7" in bob.participants)
        assert "ann" not in bob.participants
        assert bob.participants["u-7"]["name"] == "Ann"

        await ann.send_message("hello", to="u-8")
        with anyio.fail_after(5):
            await bob.wait_for(lambda: any(m.get("text") == "hello" for m in bob.messages))
        (message,) = [m for m in bob.messages if m.get("text") == "hello"]
        assert message["from"] == "u-7"  # signed with the effective id, so the server keeps it

        await ann.open("notes/a")
        await bob.open("notes/a")
        with anyio.fail_after(5):
            await bob.wait_for(
                lambda: any(
                    state.get("user", {}).get("id") == "u-7"
                    for state in bob.awareness("notes/a").values()
                )
            )
        users = [state.get("user", {}) for state in bob.awareness("").values()]
        assert {"id": "u-7", "name": "Ann", "kind": "person"} in users


async def test_without_auth_the_asked_id_stands():
    async with (
        run_server() as live,
        RoomClient(live.base_url, "team", name="Ann", id="ann") as ann,
    ):
        assert ann.participant_id == "ann"
        assert "ann" in ann.participants


async def test_an_agent_answers_messages_to_its_effective_id():
    """An agent joined with a token whose `sub` it did not choose still hears its messages."""
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        RoomClient(live.base_url, "team", name="Ann", token=token_for("ann-1", "Ann")) as ann,
        ScriptedLLMServer([reply("On it.")]) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        agent = Agent("Helper", llm=llm, participant_id="helper")
        token = token_for("agent-42", "Helper", kind="agent")
        async with agent.connect(live.base_url, "team", token=token):
            assert agent.id == "agent-42"
            await ann.send_message("summarise, please", to="agent-42")
            with anyio.fail_after(10):
                await ann.wait_for(
                    lambda: any(m["from"] == "agent-42" and "text" in m for m in ann.messages)
                )
        answer = next(m for m in ann.messages if m["from"] == "agent-42" and "text" in m)
        assert answer["text"] == "On it." and answer["to"] == "ann-1"


async def test_a_client_without_a_token_is_refused_at_once_and_says_why():
    async with run_server(extensions=[JwtAuth(SECRET)]) as live:
        started = time.monotonic()
        with pytest.raises(ClientError) as refused:
            async with RoomClient(live.base_url, "team", name="Ann", connect_timeout=10):
                pass
        assert time.monotonic() - started < 3
        assert refused.value.code == CloseCode.UNAUTHENTICATED
        assert "token required" in str(refused.value)
