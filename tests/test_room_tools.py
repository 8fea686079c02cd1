"""Tools offered to a room: listed in the room document, called through the server.

Real server, real `RoomClient`s over real sockets, raw y-websocket peers for hostile
input, a Node y-websocket participant for the JavaScript side of the wire, and agents
driven by the scripted model server.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pycrdt
import pytest
from conftest import NODE_DIR, LiveServer, run_node

from meshroom import Access, Extension, RoomClient
from meshroom.agents import Agent, ErrorResponse, OpenAILLM, ToolContext, Toolkit, tool
from meshroom.client import RoomCallError
from meshroom.protocol._calls import decode_room_call, encode_room_call
from meshroom.protocol._messages import RoomCallMessage, encode_update
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ROOM = "lab"


def text_tools() -> Toolkit:
    @tool(read_only=True)
    async def shout(text: str) -> str:
        """Say it louder.

        Args:
            text: What to say.
        """
        return text.upper() + "!"

    @tool(read_only=True)
    async def stats(text: str, context: ToolContext) -> dict[str, Any]:
        """Count words and name who asked.

        Args:
            text: The text to count.
        """
        return {"words": len(text.split()), "for": context.on_behalf_of}

    return Toolkit("text", [shout, stats], description="Text helpers")


def slow_tools(started: anyio.Event, cancelled: list[str]) -> Toolkit:
    @tool
    async def wait(seconds: float) -> str:
        """Wait, then say done.

        Args:
            seconds: How long.
        """
        started.set()
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled.append("wait")
            raise
        return "done"

    @tool
    async def big(size: int) -> str:
        """Return `size` characters.

        Args:
            size: How many.
        """
        return "x" * size

    return Toolkit("slow", [wait, big])


async def wait_for(client: RoomClient, predicate: Any, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        await client.wait_for(predicate)


async def test_a_toolkit_offered_by_one_client_is_listed_and_called_by_another(
    live_server: LiveServer,
) -> None:
    url = live_server.base_url
    async with (
        RoomClient(url, ROOM, name="Ann", id="ann") as ann,
        RoomClient(url, ROOM, name="Bob", id="bob") as bob,
    ):
        await ann.offer(text_tools())
        await wait_for(bob, lambda: "ann/text" in bob.toolkits)
        listed = bob.toolkits["ann/text"]
        assert listed["offeredBy"] == "ann" and listed["description"] == "Text helpers"
        assert [t["name"] for t in listed["tools"]] == ["shout", "stats"]
        assert listed["tools"][0]["inputSchema"]["required"] == ["text"]

        assert await bob.call_tool("ann/text", "shout", {"text": "hi"}) == "HI!"
        # a bare name works while only one participant offers it; the tool sees the caller
        assert await bob.call_tool("text", "stats", {"text": "a b c"}) == {
            "words": 3,
            "for": "bob",
        }

        await ann.withdraw("text")
        await wait_for(bob, lambda: "ann/text" not in bob.toolkits)
        with pytest.raises(RoomCallError) as refused:
            await bob.call_tool("ann/text", "shout", {"text": "hi"})
        assert refused.value.reason == "unknown-toolkit"


async def test_bad_calls_get_a_reason_and_change_nothing(live_server: LiveServer) -> None:
    url = live_server.base_url
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        RoomClient(url, ROOM, id="bob") as bob,
    ):
        await ann.offer(text_tools())
        await wait_for(bob, lambda: "ann/text" in bob.toolkits)
        with pytest.raises(RoomCallError) as unknown:
            await bob.call_tool("ann/text", "whisper", {"text": "hi"})
        assert unknown.value.reason == "unknown-tool" and "shout" in str(unknown.value)
        with pytest.raises(RoomCallError) as invalid:
            await bob.call_tool("ann/text", "shout", {"text": 5})
        assert invalid.value.reason == "tool-error"
        assert "do not match its schema" in str(invalid.value)
        with pytest.raises(RoomCallError) as nobody:
            await bob.call_tool("cid/text", "shout", {"text": "hi"})
        assert nobody.value.reason == "unknown-toolkit"
        # the room is unharmed: the next call works
        assert await bob.call_tool("ann/text", "shout", {"text": "ok"}) == "OK!"
        assert live_server.server.room(ROOM).calls.pending() == 0


async def test_the_offerer_leaving_mid_call_ends_the_call(live_server: LiveServer) -> None:
    url = live_server.base_url
    started, cancelled = anyio.Event(), []
    async with RoomClient(url, ROOM, id="bob") as bob:
        ann = RoomClient(url, ROOM, id="ann")
        async with ann:
            await ann.offer(slow_tools(started, cancelled))
            await wait_for(bob, lambda: "ann/slow" in bob.toolkits)
            async with anyio.create_task_group() as group:
                outcome: list[BaseException] = []

                async def call_it() -> None:
                    try:
                        await bob.call_tool("ann/slow", "wait", {"seconds": 30})
                    except RoomCallError as error:
                        outcome.append(error)

                group.start_soon(call_it)
                with anyio.fail_after(5):
                    await started.wait()
                await ann.stop()
        assert outcome and outcome[0].reason == "offerer-left"  # type: ignore[attr-defined]
        await wait_for(bob, lambda: "ann/slow" not in bob.toolkits)


async def test_timeouts_cancellation_and_sizes(live_server: LiveServer) -> None:
    url = live_server.base_url
    started, cancelled = anyio.Event(), []
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        RoomClient(url, ROOM, id="bob") as bob,
    ):
        await ann.offer(slow_tools(started, cancelled))
        await wait_for(bob, lambda: "ann/slow" in bob.toolkits)
        with pytest.raises(RoomCallError) as late:
            await bob.call_tool("ann/slow", "wait", {"seconds": 30}, timeout=0.3)
        assert late.value.reason == "timeout"
        await wait_for(ann, lambda: cancelled == ["wait"])  # the offerer stopped the work

        with anyio.move_on_after(0.3):  # the caller gives up: the call is cancelled
            await bob.call_tool("ann/slow", "wait", {"seconds": 30})
        await wait_for(ann, lambda: cancelled == ["wait", "wait"])
        assert live_server.server.room(ROOM).calls.pending() == 0

        with pytest.raises(RoomCallError) as too_big:
            await bob.call_tool("ann/slow", "big", {"size": 2 * 1024 * 1024})
        assert too_big.value.reason == "too-large"
        with pytest.raises(RoomCallError) as too_big_arguments:
            await bob.call_tool("ann/slow", "wait", {"seconds": 1, "pad": "y" * 1_100_000})
        assert too_big_arguments.value.reason == "too-large"
        assert await bob.call_tool("ann/slow", "big", {"size": 3}) == "xxx"


async def test_a_flood_of_calls_is_bounded(live_server: LiveServer) -> None:
    url = live_server.base_url
    started, cancelled = anyio.Event(), []
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        RoomClient(url, ROOM, id="bob") as bob,
    ):
        await ann.offer(slow_tools(started, cancelled))
        await wait_for(bob, lambda: "ann/slow" in bob.toolkits)
        reasons: list[str] = []

        async def one() -> None:
            try:
                await bob.call_tool("ann/slow", "wait", {"seconds": 2}, timeout=1)
            except RoomCallError as error:
                reasons.append(error.reason)

        async with anyio.create_task_group() as group:
            for _ in range(70):
                group.start_soon(one)
        assert reasons.count("too-many") == 6
        assert reasons.count("timeout") == 64
        assert live_server.server.room(ROOM).calls.pending() == 0


async def test_nobody_offers_under_another_name_or_writes_the_map(
    live_server: LiveServer, raw_peer: Any
) -> None:
    async with (
        RoomClient(live_server.base_url, ROOM, id="ann") as ann,
        raw_peer(live_server.url(ROOM, id="mallory")) as mallory,
    ):
        offer = {
            "name": "text",
            "offeredBy": "ann",
            "tools": [{"name": "shout", "description": "x", "inputSchema": {"type": "object"}}],
        }
        await mallory.send(encode_room_call({"type": "offer", "toolkit": offer}))
        reply_message = await mallory.recv_until(lambda m: isinstance(m, RoomCallMessage))
        assert decode_room_call(reply_message.body)["type"] == "offered"
        await wait_for(ann, lambda: "mallory/text" in ann.toolkits)
        assert "ann/text" not in ann.toolkits
        assert ann.toolkits["mallory/text"]["offeredBy"] == "mallory"

        for bad, expected in [
            ({"type": "offer", "toolkit": {"name": "bad name!", "tools": []}}, "must match"),
            ({"type": "offer", "toolkit": {"name": "t", "tools": [{"name": "x"}]}}, "inputSchema"),
            ({"type": "call", "id": True, "toolkit": "x", "tool": "y"}, "needs an 'id'"),
            ({"type": "result", "id": 99, "result": 1}, "no call 99"),
            ({"type": "fly"}, "unknown room call type"),
        ]:
            await mallory.send(encode_room_call(bad))
            answer = await mallory.recv_until(lambda m: isinstance(m, RoomCallMessage))
            decoded = decode_room_call(answer.body)
            assert decoded["type"] == "error" and expected in decoded["error"], decoded
        await mallory.send(b"\x05\x03{x}")  # not JSON
        answer = await mallory.recv_until(lambda m: isinstance(m, RoomCallMessage))
        assert "not JSON" in decode_room_call(answer.body)["error"]
        # writing the map itself: repaired in the same transaction, never seen
        forged = pycrdt.Doc()
        forged.get("toolkits", type=pycrdt.Map)["ann/evil"] = {"name": "evil", "offeredBy": "ann"}
        await mallory.send(encode_update(forged.get_update()))
        await mallory.send(encode_room_call({"type": "withdraw", "toolkit": "text"}))
        await wait_for(ann, lambda: "mallory/text" not in ann.toolkits)
        assert ann.toolkits == {}


async def test_grants_say_who_may_offer_and_who_may_call(server_factory: Any) -> None:
    class Grants(Extension):
        async def on_authenticate(self, payload: Any) -> Access:
            who = payload.headers.get("x-who") or "anon"
            return Access(who, may_offer_tools=who != "guest", may_call_tools=who != "guest")

    async with server_factory(extensions=[Grants()]) as live:
        url = live.base_url
        async with RoomClient(url, ROOM, id="ann") as ann:
            await ann.offer(text_tools())
        # headers are not settable on RoomClient: a raw peer plays the guest
        from websockets.asyncio.client import connect

        async with RoomClient(url, ROOM) as host:
            await host.offer(text_tools())
            async with connect(
                live.url(ROOM), additional_headers={"x-who": "guest"}, compression=None
            ) as guest:
                await guest.send(
                    encode_room_call(
                        {
                            "type": "call",
                            "id": 1,
                            "toolkit": "text",
                            "tool": "shout",
                            "arguments": {"text": "hi"},
                        }
                    )
                )
                await guest.send(
                    encode_room_call({"type": "offer", "toolkit": text_tools().offer_spec()})
                )
                answers = []
                with anyio.fail_after(5):
                    while len(answers) < 2:
                        data = await guest.recv()
                        if data[:1] == b"\x05":
                            answers.append(decode_room_call(data[1:]))
                assert answers[0]["reason"] == "forbidden"
                assert answers[1]["type"] == "error" and "offering" in answers[1]["error"]
            assert [kit["offeredBy"] for kit in host.toolkits.values()] == ["anon"]


NODE_OFFERER = """
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
const [url, room] = process.argv.slice(2)
const doc = new Y.Doc()
const provider = new WebsocketProvider(url, room, doc,
  { WebSocketPolyfill: WebSocket, disableBc: true, params: { id: 'node', name: 'Node' } })
const send = (call) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 5)
  encoding.writeVarString(encoder, JSON.stringify(call))
  provider.ws.send(encoding.toUint8Array(encoder))
}
let answered = false
let got = null
const finish = () => {
  if (!answered || got === null) return
  console.log(JSON.stringify({ got, toolkits: Object.keys(doc.getMap('toolkits').toJSON()) }))
  setTimeout(() => { provider.destroy(); process.exit(0) }, 200)  // let the result leave
}
provider.messageHandlers[5] = (encoder, decoder) => {
  const call = JSON.parse(decoding.readVarString(decoder))
  if (call.type === 'call') {
    const reversed = call.arguments.text.split('').reverse().join('')
    send({ type: 'result', id: call.id, result: { reversed, from: call.from } })
    answered = true
    finish()
  }
  if (call.type === 'result' && call.id === 'n1') {
    got = call.result
    finish()
  }
}
provider.on('sync', (synced) => {
  if (!synced) return
  send({ type: 'offer', toolkit: { name: 'js', description: 'From Node', tools: [
    { name: 'reverse', description: 'Reverse a text', inputSchema: {
      type: 'object', properties: { text: { type: 'string' } }, required: ['text'],
      additionalProperties: false } }] } })
  const tryCall = () => {
    if (doc.getMap('toolkits').has('py/text')) {
      const args = { text: 'from node' }
      send({ type: 'call', id: 'n1', toolkit: 'py/text', tool: 'shout', arguments: args })
    } else setTimeout(tryCall, 20)
  }
  tryCall()
})
setTimeout(() => { console.log('{"timeout": true}'); process.exit(1) }, 15000)
"""


@pytest.mark.interop
async def test_a_javascript_participant_offers_and_calls_tools(
    live_server: LiveServer, tmp_path: Any
) -> None:
    script = tmp_path / "offerer.mjs"
    script.write_text(NODE_OFFERER)
    link = tmp_path / "node_modules"
    link.symlink_to(NODE_DIR / "node_modules")
    async with RoomClient(live_server.base_url, ROOM, id="py") as py:
        await py.offer(text_tools())
        async with anyio.create_task_group() as group:
            results: list[Any] = []

            async def node() -> None:
                results.append(await run_node(str(script), live_server.base_url, ROOM))

            group.start_soon(node)
            await wait_for(py, lambda: "node/js" in py.toolkits, timeout=15)
            assert await py.call_tool("js", "reverse", {"text": "abc"}) == {
                "reversed": "cba",
                "from": "py",
            }
        seen = json.loads(results[0].stdout.strip().splitlines()[-1])
        assert seen["got"] == "FROM NODE!"
        assert sorted(seen["toolkits"]) == ["node/js", "py/text"]


async def test_an_agent_uses_a_toolkit_another_participant_offers(live_server: LiveServer) -> None:
    url = live_server.base_url
    script = [
        tool_calls(call("text_shout", text="hello")),
        tool_calls(call("text_shout", text=7)),
        reply("Shouted."),
    ]
    async with (
        RoomClient(url, ROOM, id="ann", name="Ann") as ann,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        await ann.offer(text_tools())
        agent = Agent("Helper", llm=llm, progress=False)
        async with agent.connect(url, ROOM):
            await wait_for(agent.client, lambda: "ann/text" in agent.client.toolkits)
            result = await agent.run("Shout hello.")
        assert result.completed
        first = llm_server.requests[0]
        assert {"text_shout", "text_stats"} <= set(first.tool_names)
        assert llm_server.requests[1].tool_results() == ["HELLO!"]
        # the model's bad arguments are refused before anything is sent, as for a local tool
        refused = json.loads(llm_server.requests[2].tool_results()[0])
        assert "do not match its schema" in refused["error"]


async def test_an_embedded_agent_calls_and_offers_tools(live_server: LiveServer) -> None:
    url = live_server.base_url
    script = [tool_calls(call("text_shout", text="embedded")), reply("Done.")]
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        await ann.offer(text_tools())
        await wait_for(ann, lambda: "ann/text" in ann.toolkits)
        agent = Agent("Inside", llm=llm, progress=False, participant_id="inside")
        async with agent.embed(live_server.server, ROOM):
            result = await agent.run("Shout.")
            assert llm_server.requests[1].tool_results() == ["EMBEDDED!"]
            await agent.client.offer(text_tools())
            await wait_for(ann, lambda: "inside/text" in ann.toolkits)
            assert await ann.call_tool("inside/text", "shout", {"text": "back"}) == "BACK!"
        assert result.completed
        await wait_for(ann, lambda: "inside/text" not in ann.toolkits)


async def test_offers_are_made_again_after_a_reconnection() -> None:
    from conftest import free_port, run_server

    from meshroom.client import Backoff

    port = free_port()
    fast = Backoff(initial=0.05, factor=2.0, maximum=0.3, jitter=0.5)
    offered, done = anyio.Event(), anyio.Event()

    async def ann_offers(url: str) -> None:
        async with RoomClient(url, ROOM, id="ann", backoff=fast) as ann:
            await ann.offer(text_tools())
            offered.set()
            await done.wait()

    async with anyio.create_task_group() as group:
        async with run_server(port) as first:
            group.start_soon(ann_offers, first.base_url)
            with anyio.fail_after(5):
                await offered.wait()
        async with run_server(port) as second, RoomClient(second.base_url, ROOM) as bob:
            await wait_for(bob, lambda: "ann/text" in bob.toolkits, timeout=10)
            assert await bob.call_tool("ann/text", "shout", {"text": "again"}) == "AGAIN!"
        done.set()


def test_remote_errors_reach_the_model_as_error_responses() -> None:
    from meshroom.agents._remote import RemoteToolkit

    kit = RemoteToolkit(
        "ann/text",
        {"name": "text", "offeredBy": "ann", "tools": text_tools().offer_spec()["tools"]},
        prefix="text",
    )
    assert [t.name for t in kit] == ["text_shout", "text_stats"]
    checked = kit.check("text_shout", {"text": 1})
    assert isinstance(checked, ErrorResponse)
