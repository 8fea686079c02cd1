"""Tool-call benchmark: a tool offered to the room, called through the server, next to a local call.

Three processes, as in a deployment: `meshroom serve`, the offerer (a `RoomClient` that
offers a toolkit), and the caller (this process, a `RoomClient` calling it with
`call_tool`). A remote call is caller → server → offerer → server → caller over real
sockets on 127.0.0.1, with the toolkit's validation at the offerer. The local call is
the same tool through `Toolkit.execute` in this process (validation included), what an
agent pays for a tool of its own. Both run sequentially (one call waits for the last);
"concurrent" runs 16 calls at a time to show throughput.

    python benchmarks/tools.py                  # 1,000 calls each
    python benchmarks/tools.py --calls 500 --json out.json

The server's default per-connection rate limit (300 messages/s sustained, bursts of
3,000) bounds one caller; 1,000 sequential plus 1,000 concurrent calls stay inside it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import anyio

from meshroom import RoomClient
from meshroom.agents import ToolContext, Toolkit, tool

ROOM = "bench-tools"
WARMUP = 50


def make_toolkit() -> Toolkit:
    @tool(read_only=True)
    async def word_count(text: str) -> dict[str, int]:
        """Count the words of a text.

        Args:
            text: The text.
        """
        return {"words": len(text.split())}

    return Toolkit("bench", [word_count], description="Benchmark tools")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offerer(url: str, ready: Any, stop: Any) -> None:
    async def run() -> None:
        async with RoomClient(url, ROOM, id="offerer") as client:
            await client.offer(make_toolkit())
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)

    anyio.run(run)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float], wall: float) -> dict[str, float]:
    return {
        "p50_us": statistics.median(samples) * 1e6,
        "p99_us": percentile(samples, 0.99) * 1e6,
        "mean_us": statistics.fmean(samples) * 1e6,
        "calls_per_s": len(samples) / wall,
    }


async def measure(url: str, calls: int) -> dict[str, dict[str, float]]:
    arguments = {"text": "the quick brown fox jumps over the lazy dog"}
    toolkit = make_toolkit()
    context = ToolContext(room=ROOM, caller="bench")
    local: list[float] = []
    for index in range(WARMUP + calls):
        started = time.perf_counter()
        await toolkit.execute(context, "word_count", arguments)
        if index >= WARMUP:
            local.append(time.perf_counter() - started)
    local_wall = sum(local)

    async with RoomClient(url, ROOM, id="caller") as client:
        with anyio.fail_after(10):
            await client.wait_for(lambda: "offerer/bench" in client.toolkits)
        remote: list[float] = []
        began = 0.0
        for index in range(WARMUP + calls):
            if index == WARMUP:
                began = time.perf_counter()
            started = time.perf_counter()
            result = await client.call_tool("offerer/bench", "word_count", arguments)
            if index >= WARMUP:
                remote.append(time.perf_counter() - started)
            assert result == {"words": 9}
        remote_wall = time.perf_counter() - began

        concurrent: list[float] = []
        limiter = anyio.Semaphore(16)

        async def one() -> None:
            async with limiter:
                started = time.perf_counter()
                await client.call_tool("offerer/bench", "word_count", arguments)
                concurrent.append(time.perf_counter() - started)

        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(calls):
                group.start_soon(one)
        concurrent_wall = time.perf_counter() - began
    return {
        "local": summary(local, local_wall),
        "remote": summary(remote, remote_wall),
        "remote_concurrent_16": summary(concurrent, concurrent_wall),
    }


def main(calls: int, json_out: str | None) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "meshroom", "serve", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=offerer, args=(url, ready, stop))
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("meshroom serve did not start") from None
                time.sleep(0.05)
        process.start()
        if not ready.wait(20):
            raise RuntimeError("the offerer did not start")
        results = anyio.run(measure, url, calls)
    finally:
        stop.set()
        process.join(10)
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    header = f"{'calls':<24}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}{'calls/s':>10}"
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        print(
            f"{name:<24}{row['p50_us']:>10.1f}{row['p99_us']:>10.1f}{row['mean_us']:>10.1f}"
            f"{row['calls_per_s']:>10.0f}"
        )
    ratio = results["remote"]["p50_us"] / results["local"]["p50_us"]
    print(f"\nremote p50 / local p50: {ratio:.0f}x ({calls} calls each, one run)")
    if json_out:
        report = {
            "benchmark": "tools",
            "calls": calls,
            "results": results,
            "remote_over_local_p50": ratio,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        }
        with open(json_out, "w") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", dest="json_out", default=None)
    options = parser.parse_args()
    main(options.calls, options.json_out)
