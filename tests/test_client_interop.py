"""RoomClient co-editing with other Yjs peers on the meshroom server.

Three different client stacks edit one document at once and must converge:
`RoomClient`, an unmodified Node `y-websocket` `WebsocketProvider`, and pycrdt's
own `Provider` over a plain `websockets` connection.
"""

from __future__ import annotations

import json
import os

import anyio
import pytest
from conftest import NODE_DIR, LiveServer, WebsocketChannel
from pycrdt import Doc, Provider, Text
from websockets.asyncio.client import connect

from meshroom import RoomClient

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

# A Node peer: joins `doc` with y-websocket, appends its marker to the shared text,
# publishes its name, then waits until it sees every marker and every expected name
# in awareness, and prints what it saw as one JSON line.
NODE_PEER = """
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [url, doc_name, marker, markersJson, namesJson] = process.argv.slice(1)
const markers = JSON.parse(markersJson)
const names = JSON.parse(namesJson)
const doc = new Y.Doc()
const text = doc.getText('text')
const provider = new WebsocketProvider(url, doc_name, doc, {
  WebSocketPolyfill: WebSocket,
  params: { id: 'node-peer', name: 'Node', kind: 'person' },
  disableBc: true,
  maxBackoffTime: 300
})
provider.awareness.setLocalStateField('user', { name: 'Node' })
const seenNames = () => [...provider.awareness.getStates().values()]
  .map((state) => state.user && state.user.name).filter(Boolean)
provider.once('sync', () => text.insert(text.length, marker))
const timer = setInterval(() => {
  const current = text.toString()
  const names_seen = seenNames()
  if (markers.every((m) => current.includes(m)) && names.every((n) => names_seen.includes(n))) {
    clearInterval(timer)
    process.stdout.write(JSON.stringify({ text: current, names: names_seen }) + '\\n')
    setTimeout(() => { provider.destroy(); process.exit(0) }, 300)
  }
}, 20)
setTimeout(() => { console.error('timed out: ' + text.toString()); process.exit(1) }, 20000)
"""


async def test_room_client_node_and_pycrdt_provider_converge(live_server: LiveServer) -> None:
    path = "notes/plan"
    markers = ["[room-client]", "[node]", "[pycrdt-provider]"]
    node_result: dict[str, str] = {}

    async def run_node() -> None:
        process = await anyio.run_process(
            [
                "node",
                "--input-type=module",
                "-e",
                NODE_PEER,
                live_server.base_url,
                f"team/{path}",
                "[node]",
                json.dumps(markers),
                json.dumps(["Ann"]),
            ],
            cwd=NODE_DIR,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
            check=False,
        )
        assert process.returncode == 0, process.stderr.decode()
        node_result.update(json.loads(process.stdout.decode().strip().splitlines()[-1]))

    provider_doc = Doc()
    provider_text = provider_doc.get("text", type=Text)
    async with (
        RoomClient(live_server.base_url, "team", name="Ann", id="ann") as ann,
        connect(live_server.url("team", path, id="py", name="Py"), compression=None) as ws,
        Provider(provider_doc, WebsocketChannel(ws, path)),
        anyio.create_task_group() as group,
    ):
        group.start_soon(run_node)
        ann_text = (await ann.open_ydoc(path)).get("text", type=Text)
        ann_text += "[room-client]"
        provider_text += "[pycrdt-provider]"

        def has_all(text: Text) -> bool:
            return all(marker in str(text) for marker in markers)

        with anyio.fail_after(20):
            await ann.wait_for(lambda: has_all(ann_text) and has_all(provider_text))
            # the Node peer shows up in presence and in the document's awareness
            await ann.wait_for(lambda: "node-peer" in ann.participants)
            await ann.wait_for(
                lambda: any(
                    s.get("user", {}).get("name") == "Node" for s in ann.awareness(path).values()
                )
            )
        assert ann.participants["node-peer"]["name"] == "Node"
        assert ann.participants["py"]["name"] == "Py"
    # the Node peer saw the three markers and Ann's awareness
    assert "Ann" in node_result["names"]
    final = str(ann_text)
    assert node_result["text"] == final == str(provider_text)
    assert sorted(final.replace("][", "]\n[").split("\n")) == sorted(markers)
