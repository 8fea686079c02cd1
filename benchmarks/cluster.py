"""Scale-out benchmark: how much a hop through Redis Streams adds to an edit's delivery.

Two `meshroom serve --redis` processes share a private `redis-server` (no
persistence) on free 127.0.0.1 ports. One Python `RoomClient` writes on
process A; one reader sits on A (same process) and one on B (through Redis).

- **steady**: edits at a fixed rate; delivery latency p50 / p99 / max per reader;
- **burst**: edits as fast as the writer makes them; time until the last one
  reached each reader, and edits/s delivered;
- the document's stream length afterwards (compaction keeps it bounded).

    python benchmarks/cluster.py                 # 1,000 steady edits at 200/s, 5,000 burst
    python benchmarks/cluster.py --quick         # a smoke run
    python benchmarks/cluster.py --json benchmarks/results/cluster.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import redis
from pycrdt import Map

from meshroom import RoomClient

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], ready: Any) -> subprocess.Popen:
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}")
        try:
            if ready():
                return process
        except Exception:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def serve(port: int, url: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "meshroom", "serve", "--port", str(port), "--redis", url]
    command += ["--log-level", "warning"]
    health = f"http://127.0.0.1:{port}/healthz"
    return start(command, lambda: httpx.get(health, timeout=0.5).status_code == 200)


class Reader:
    """Records when each edit (a map key) first arrived."""

    def __init__(self, edits: Map) -> None:
        self.arrived: dict[str, float] = {}
        self.map = edits  # the observer lives as long as this Map object
        edits.observe(self._seen)

    def _seen(self, event: Any) -> None:
        now = time.perf_counter()
        for key in event.keys:
            self.arrived.setdefault(key, now)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_phase(
    writer: Map, readers: dict[str, Reader], phase: str, count: int, rate: float | None
) -> dict[str, Any]:
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for index in range(count):
        key = f"{phase}{index}"
        if rate is not None:
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
        sent[key] = time.perf_counter()
        writer[key] = index
        if rate is None and index % 50 == 0:
            await anyio.sleep(0)
    with anyio.fail_after(120):
        while not all(
            len([k for k in r.arrived if k.startswith(phase)]) == count for r in readers.values()
        ):
            await anyio.sleep(0.01)
    result: dict[str, Any] = {}
    for name, reader in readers.items():
        latencies = [(reader.arrived[key] - sent[key]) * 1000 for key in sent]
        last = max(reader.arrived[key] for key in sent)
        result[name] = {
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "max_ms": round(max(latencies), 2),
            "all_delivered_s": round(last - start, 3),
            "edits_per_s": round(count / (last - start)),
        }
    return result


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    redis_port, port_a, port_b = free_port(), free_port(), free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    processes = [
        start(
            [
                binary,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            lambda: redis.Redis(port=redis_port).ping(),
        )
    ]
    try:
        processes.append(serve(port_a, url))
        processes.append(serve(port_b, url))
        async with (
            RoomClient(f"ws://127.0.0.1:{port_a}", "bench") as writer_client,
            RoomClient(f"ws://127.0.0.1:{port_a}", "bench") as same_client,
            RoomClient(f"ws://127.0.0.1:{port_b}", "bench") as other_client,
        ):
            writer = (await writer_client.open_ydoc("doc")).get("edits", type=Map)
            readers = {
                "same process (A)": Reader(
                    (await same_client.open_ydoc("doc")).get("edits", type=Map)
                ),
                "other process (B, via Redis)": Reader(
                    (await other_client.open_ydoc("doc")).get("edits", type=Map)
                ),
            }
            steady = await run_phase(writer, readers, "s", arguments.steady, arguments.rate)
            burst = await run_phase(writer, readers, "b", arguments.burst, None)
        client = redis.Redis(port=redis_port)
        stream_length = client.xlen("meshroom:doc:bench/doc")
        client.close()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
    return {
        "machine": f"{platform.system()} {platform.machine()}, {platform.python_version()}",
        "steady": {"edits": arguments.steady, "rate_per_s": arguments.rate, "readers": steady},
        "burst": {"edits": arguments.burst, "readers": burst},
        "stream_entries_after": stream_length,
        "edits_written": arguments.steady + arguments.burst,
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{results['machine']}")
    steady, burst = results["steady"], results["burst"]
    print(f"\nsteady: {steady['edits']} edits at {steady['rate_per_s']}/s")
    print(f"{'reader':<32}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, row in steady["readers"].items():
        print(f"{name:<32}{row['p50_ms']:>9}{row['p99_ms']:>9}{row['max_ms']:>9}")
    print(f"\nburst: {burst['edits']} edits as fast as the writer makes them")
    print(f"{'reader':<32}{'all in s':>9}{'edits/s':>9}{'p99 ms':>9}")
    for name, row in burst["readers"].items():
        print(f"{name:<32}{row['all_delivered_s']:>9}{row['edits_per_s']:>9}{row['p99_ms']:>9}")
    print(
        f"\nstream entries afterwards: {results['stream_entries_after']} "
        f"(for {results['edits_written']} edits)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="100 steady edits, 500 burst")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.steady, arguments.burst = 100, 500
    results = anyio.run(main, arguments)
    print_table(results)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")
