"""Metrics: every family of ``/metrics`` moves when its event happens.

A real server on uvicorn (meshroom's transport) with auth, storage that fails while the
test says so, the activity log on a disk that fills up, and an agent driven by the
scripted model server; ``/metrics`` is scraped over HTTP and parsed with
prometheus-client's own parser. Then `meshroom serve --metrics --log-format json` as a
subprocess: its metrics, its admin-only activity endpoint and its JSON log lines.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pycrdt
import pytest
from conftest import ROOT, eventually, free_port, serve_app
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount
from test_activity import FullDisk
from test_storage_extension import FlakyStorage

from meshroom import ClientError, RoomClient, Server, create_app
from meshroom.activity import ActivityExtension
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import room_toolkit
from meshroom.auth import Grant, JwtAuth, mint_token
from meshroom.metrics import MetricsExtension
from meshroom.storage import FsspecStorage, StorageExtension
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls
from meshroom.transport import uvicorn_websocket

pytestmark = pytest.mark.anyio

SECRET = "metrics-test-secret-0123456789abcdef"
DOWN = 10**9


class Scrape:
    """One scrape of ``/metrics``: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                self.values[key] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)


def token(participant: str, kind: str = "person") -> str:
    return mint_token(
        secret=SECRET,
        grants=[Grant("team")],
        participant_id=participant,
        name=participant,
        kind=kind,
    )


async def test_every_family_moves_with_its_event(tmp_path: Path) -> None:
    flaky = FlakyStorage(FsspecStorage(str(tmp_path / "rooms")))
    disk = FullDisk(str(tmp_path / "activity"))
    disk.full = True
    metrics = MetricsExtension()
    extensions = [
        JwtAuth(SECRET),
        StorageExtension(flaky, retry_initial=0.02, retry_max=0.05),
        ActivityExtension(disk, flush_interval=0.01, max_buffered=2, retry=(0.01, 0.05)),
        metrics,
    ]
    server = Server(extensions=extensions, grace_period=0.2)
    app = create_app(server, extra_routes=[Mount("/metrics", app=metrics.asgi_app())])
    script = [tool_calls(call("list_participants")), reply("Two of us.")]
    async with (
        serve_app(app, ws=uvicorn_websocket(server)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        base = f"ws://127.0.0.1:{port}"

        async def scrape() -> Scrape:
            answer = await http.get("/metrics/")
            assert answer.status_code == 200
            return Scrape(answer.text)

        before = await scrape()
        assert before("meshroom_rooms_open") == 0 and before("meshroom_connections") == 0
        agent = Agent("Editor", toolkits=[room_toolkit()], llm=llm)
        async with (
            RoomClient(base, "team", token=token("ann")) as ann,
            RoomClient(base, "team", token=token("bob")) as bob,
            agent.connect(base, "team", token=token("editor", "agent")),
        ):
            mine, theirs = await ann.open_ydoc("doc"), await bob.open_ydoc("doc")
            now = await scrape()
            assert now("meshroom_rooms_open") == 1 and now("meshroom_connections") >= 5
            assert now("meshroom_participants", kind="person") == 2
            assert now("meshroom_participants", kind="agent") == 1

            mine.get("t", type=pycrdt.Text).insert(0, "hello")
            await eventually(lambda: str(theirs.get("t", type=pycrdt.Text)) == "hello")
            edited = await scrape()
            for name in ("meshroom_updates_received_total", "meshroom_update_bytes_received_total"):
                assert edited(name) > before(name)
            for name in ("meshroom_updates_sent_total", "meshroom_update_bytes_sent_total"):
                assert edited(name) > before(name)
            for name in ("meshroom_relay_latency_seconds", "meshroom_storage_write_seconds"):
                assert edited(f"{name}_count") > before(f"{name}_count")
                assert edited(f"{name}_bucket", le="+Inf") == edited(f"{name}_count")

            forged = mint_token(
                secret="another-secret-0123456789abcdefghij", grants=[Grant("team")]
            )
            with pytest.raises(ClientError):
                async with RoomClient(base, "team", token=forged):
                    pass
            refused = await scrape()
            assert refused("meshroom_auth_refusals_total", reason="unauthenticated") == 1

            flaky.failures = DOWN  # storage down: the edit is held, unwritten
            mine.get("t", type=pycrdt.Text).insert(0, "more ")

            async def outage() -> Scrape:
                scraped = await scrape()
                return scraped

            held = await outage()
            with anyio.fail_after(10):
                while not (
                    held("meshroom_storage_failures_total", what="journal") >= 1
                    and held("meshroom_storage_pending_bytes") > 0
                ):
                    await anyio.sleep(0.02)
                    held = await outage()
            flaky.failures = 0
            await eventually(lambda: str(theirs.get("t", type=pycrdt.Text)) == "more hello")
            assert (await scrape())("meshroom_storage_pending_bytes") == 0

            await ann.send_message("who is here?", to=agent.id)
            await ann.wait_for(lambda: any(m.get("text") == "Two of us." for m in ann.messages))
            await server.activity.drain()
            ran = await scrape()
            assert ran("meshroom_agent_runs_total", stop="answer") == 1
            assert ran("meshroom_tool_call_seconds_count") == 1
            assert ran("meshroom_llm_tokens_total", kind="prompt") > 0
            assert ran("meshroom_llm_tokens_total", kind="completion") > 0
            assert ran("meshroom_tool_call_errors_total") == 0
            assert ran("meshroom_activity_events_total", type="participant.joined") == 3
            assert ran("meshroom_activity_events_total", type="message.to_agent") == 1
            # the activity log's disk is full: its events beyond the bound are dropped
            assert ran("meshroom_activity_dropped_total") > 0
        await eventually(lambda: "team" not in server.room_names())
        await server.activity.drain()
        after = await scrape()
        assert after("meshroom_rooms_open") == 0 and after("meshroom_connections") == 0
        assert after("meshroom_storage_snapshot_seconds_count") >= 1


async def start_serve(*args: str) -> tuple[Any, int]:
    port = free_port()
    process = await anyio.open_process(
        [sys.executable, "-m", "meshroom", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env=dict(os.environ),
    )
    async with httpx.AsyncClient() as http:
        with anyio.fail_after(20):
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await anyio.sleep(0.05)
    return process, port


async def test_serve_metrics_activity_endpoint_and_json_logs(tmp_path: Path) -> None:
    process, port = await start_serve(
        "--dev",
        "--storage",
        str(tmp_path),
        "--metrics",
        "--log-format",
        "json",
        "--grace-period",
        "0.1",
    )
    async with process, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        try:
            member = (await http.get("/dev/token", params={"room": "team", "id": "ann"})).json()
            admin = (await http.get("/dev/token", params={"room": "team", "admin": "1"})).json()
            async with RoomClient(f"ws://127.0.0.1:{port}", "team", token=member["token"]) as ann:
                await ann.open_ydoc("notes")
                scraped = Scrape((await http.get("/metrics/")).text)
                assert scraped("meshroom_rooms_open") == 1
                assert scraped("meshroom_participants", kind="person") == 1
            url = "/rooms/team/activity"
            assert (await http.get(url, params={"token": member["token"]})).status_code == 403
            with anyio.fail_after(10):
                while True:
                    answer = await http.get(url, params={"token": admin["token"]})
                    assert answer.status_code == 200
                    if "participant.left" in [e["type"] for e in answer.json()["events"]]:
                        break
                    await anyio.sleep(0.05)
        finally:
            process.terminate()
            await process.wait()
        assert process.stderr is not None
        lines = (await process.stderr.receive(1 << 20)).decode().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(parsed) == len([line for line in lines if line.strip()]), lines  # JSON only
    connects = [line for line in parsed if line["message"].startswith("connect ")]
    assert connects and connects[0]["room"] == "team" and connects[0]["participant"] == "ann"
    assert {"time", "level", "logger"} <= set(connects[0])
    assert all(member["token"] not in line["message"] for line in parsed)


async def test_serve_metrics_on_their_own_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    process, port = await start_serve("--metrics-port", str(metrics_port), "--no-activity")
    async with process, httpx.AsyncClient() as http:
        try:
            answer = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert answer.status_code == 200
            assert Scrape(answer.text)("meshroom_connections") == 0
            # not on the server's own port, and no activity endpoint without the log
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code != 200
            assert (
                await http.get(f"http://127.0.0.1:{port}/rooms/team/activity")
            ).status_code == 404
        finally:
            process.terminate()
            await process.wait()
