"""MCP benchmark: one tool call's round trip through `meshroom mcp`, next to a direct call.

What an agent of another framework pays for reaching the room through MCP. Each
path runs the same two tools on the same document of a real meshroom server on
127.0.0.1 (with Ann's client watching):

- **direct**: the documents toolkit's `Toolkit.execute` on a `RoomClient`, in
  this process, as a meshroom `Agent` runs it;
- **mcp stdio**: the official `mcp` client calls `meshroom mcp`, a subprocess,
  over its stdin and stdout (the 2026 protocol the client negotiates);
- **mcp http**: the same over streamable HTTP (`meshroom mcp --http`).

`read_document` (an outline of a 50-paragraph document) is a read; `rewrite_text`
(a one-word change in one paragraph, seen by Ann) is a write. Times are from the
call to its result, in the caller's process; the write's "visible" is when Ann's
document has it.

    python benchmarks/mcp.py                      # 300 calls per tool and path
    python benchmarks/mcp.py --calls 50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
# This file is named after the `mcp` package it measures: run as a script, its folder
# comes first on the path and would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from meshroom import RoomClient, Server, create_app  # noqa: E402
from meshroom.agents import AgentOrigin, ToolContext  # noqa: E402
from meshroom.agents.toolkits import documents_toolkit  # noqa: E402

ROOM, PATH = "bench", "notes/plan"
RESULTS = ROOT / "benchmarks" / "results" / "mcp.json"

Call = Callable[[str, dict[str, Any]], Awaitable[Any]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(at(0.50) * 1000, 3),
        "p99_ms": round(at(0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


async def measure(call: Call, ann_doc: Any, target: str, calls: int) -> dict[str, Any]:
    """Time `calls` reads and `calls` writes through `call`."""
    reads, writes, visible = [], [], []
    for _ in range(10):  # warm up
        await call("read_document", {"path": PATH, "format": "outline"})
    for _ in range(calls):
        started = time.perf_counter()
        await call("read_document", {"path": PATH, "format": "outline"})
        reads.append(time.perf_counter() - started)
    node = ann_doc.get_node_by_id(target).text
    for index in range(calls):
        text = f"Paragraph zero, edit {index}."
        started = time.perf_counter()
        await call("rewrite_text", {"path": PATH, "id": target, "text": text})
        writes.append(time.perf_counter() - started)
        while str(node) != text:
            await anyio.sleep(0)
        visible.append(time.perf_counter() - started)
    return {
        "read_document": summary(reads),
        "rewrite_text": summary(writes),
        "rewrite_text_visible": summary(visible),
    }


async def direct_path(url: str) -> Any:
    client = RoomClient(url, ROOM, name="Direct", kind="agent")
    await client.__aenter__()
    kit = documents_toolkit()
    context = ToolContext(
        room=ROOM, caller=client.participant_id, client=client, origin=AgentOrigin("d", "Direct")
    )

    async def call(name: str, arguments: dict[str, Any]) -> Any:
        return await kit.execute(context, name, arguments)

    return client, call


def mcp_args(url: str, *extra: str) -> list[str]:
    return ["-m", "meshroom", "mcp", "--url", url, "--room", ROOM, "--name", "Bench", *extra]


async def run(calls: int) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters

    port = free_port()
    server = Server()
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning")
    web = uvicorn.Server(config)
    results: dict[str, Any] = {}
    async with anyio.create_task_group() as group:
        group.start_soon(web.serve)
        while not web.started:
            await anyio.sleep(0.01)
        url = f"ws://127.0.0.1:{port}"
        async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
            document = await ann.open(PATH)
            with document.transaction():
                for index in range(50):
                    document.root.append_child("paragraph").append_text(f"Paragraph {index}.")
            document.assign_missing_ids()
            target = document.root.get_children()[0].id

            client, direct = await direct_path(url)
            results["direct"] = await measure(direct, document, target, calls)
            await client.__aexit__(None, None, None)

            params = StdioServerParameters(
                command=sys.executable, args=mcp_args(url), cwd=str(ROOT), env=dict(os.environ)
            )
            async with Client(params) as stdio:
                results["mcp stdio"] = await measure(stdio.call_tool, document, target, calls)

            http_port = free_port()
            process = subprocess.Popen(
                [sys.executable, *mcp_args(url, "--http", "--port", str(http_port))], cwd=ROOT
            )
            try:
                await wait_http(http_port)
                async with Client(f"http://127.0.0.1:{http_port}/mcp") as http:
                    results["mcp http"] = await measure(http.call_tool, document, target, calls)
            finally:
                process.terminate()
                await anyio.to_thread.run_sync(process.wait)
        web.should_exit = True
    return results


async def wait_http(port: int) -> None:
    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    with anyio.fail_after(30):
        while not await anyio.to_thread.run_sync(answers):
            await anyio.sleep(0.1)


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'path':<10} {'tool':<22} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}",
        "-" * 60,
    ]
    for path, tools in results.items():
        for tool, numbers in tools.items():
            lines.append(
                f"{path:<10} {tool:<22} {numbers['p50_ms']:>8.2f} {numbers['p99_ms']:>8.2f} "
                f"{numbers['mean_ms']:>8.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per tool and path")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    options = parser.parse_args()
    results = anyio.run(run, options.calls)
    print(table(results))
    report = {
        "benchmark": "mcp",
        "calls": options.calls,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {options.json}")


if __name__ == "__main__":
    main()
