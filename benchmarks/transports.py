"""Which transport should `meshroom serve` run on? The same meshroom Server on each.

Transports: uvicorn with meshroom's own WebSocket protocol (`uvicorn_websocket`,
what `meshroom serve` runs: sessions fed from the socket's callbacks, no ASGI
per connection) and with each of uvicorn's websocket implementations
(`websockets` legacy, `websockets-sansio`, `wsproto`), hypercorn, and a plain
`websockets` server feeding `Server.serve()` directly (no ASGI). Compression is off wherever
the transport allows it. The load is the fan-out scenario of `fanout.py` (real
y-websocket clients in Node: one writer, N readers, a burst then a steady rate).

    python benchmarks/transports.py                 # full load
    python benchmarks/transports.py --repeat 3 --json benchmarks/results/transports.json
    python benchmarks/transports.py --quick --transports uvicorn-meshroom,uvicorn-sansio

With `--repeat N` the transports run interleaved N times and the table shows medians;
`ratios_over_sansio` compares each transport with uvicorn's websockets-sansio round by
round (medians of the per-round ratios), since a shared machine drifts between rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fanout  # noqa: E402
from fanout import NODE_DIR, fmt, run_load, table  # noqa: E402

TRANSPORTS = (
    "uvicorn-meshroom",
    "uvicorn-websockets",
    "uvicorn-sansio",
    "uvicorn-wsproto",
    "hypercorn",
    "websockets",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def start(name: str) -> Running:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", name, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.3)
    return Running(name, port, process)


def stop(running: Running) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


# -- the servers ----------------------------------------------------------------------------------


def _server() -> Any:
    from meshroom import Limits, Server

    return Server(limits=Limits(max_connections_per_ip=0))


def serve(name: str, port: int) -> None:
    from meshroom import create_app

    server = _server()
    if name.startswith("uvicorn-"):
        import uvicorn

        from meshroom.transport import uvicorn_websocket

        kind = name.removeprefix("uvicorn-")
        implementation: Any = {"websockets": "websockets", "sansio": "websockets-sansio"}.get(
            kind, "wsproto"
        )
        if kind == "meshroom":
            implementation = uvicorn_websocket(server)
        uvicorn.run(
            create_app(server),
            host="127.0.0.1",
            port=port,
            ws=implementation,
            ws_per_message_deflate=False,
            log_level="warning",
            lifespan="on",
        )
    elif name == "hypercorn":
        import anyio
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "WARNING"
        anyio.run(hypercorn_serve, create_app(server), config)
    elif name == "websockets":
        import anyio

        anyio.run(_serve_websockets, server, port)
    else:
        raise SystemExit(f"unknown transport {name!r}")


async def _serve_websockets(server: Any, port: int) -> None:
    """A plain `websockets` server: each socket goes straight to `Server.serve()`."""
    from urllib.parse import parse_qsl, urlsplit

    from websockets.asyncio.server import serve as websockets_serve
    from websockets.exceptions import ConnectionClosed as WsClosed

    from meshroom.server import ConnectionClosed

    class Adapter:
        def __init__(self, websocket: Any) -> None:
            self.websocket = websocket

        async def send(self, message: bytes) -> None:
            try:
                await self.websocket.send(message)
            except WsClosed as error:
                raise ConnectionClosed(1006, str(error)) from None

        async def recv(self) -> bytes:
            try:
                data = await self.websocket.recv()
            except WsClosed as error:
                raise ConnectionClosed(1006, str(error)) from None
            return data if isinstance(data, bytes) else data.encode()

        async def close(self, code: int = 1000, reason: str = "") -> None:
            await self.websocket.close(code, reason)

    async def handler(websocket: Any) -> None:
        target = urlsplit(websocket.request.path)
        host, client_port = websocket.remote_address[:2]
        await server.serve(
            Adapter(websocket),
            target.path,
            query=dict(parse_qsl(target.query)),
            headers=dict(websocket.request.headers),
            client=f"{host}:{client_port}",
        )

    async with server, websockets_serve(handler, "127.0.0.1", port, compression=None) as ws:
        await ws.serve_forever()


# -- driver ---------------------------------------------------------------------------------------

#: What decides the default transport: (name, keys into a fan-out result).
DECIDING = (
    ("throughput", ("burst", "edits_per_second")),
    ("burst_p99", ("burst", "latency_ms_p99")),
    ("steady_p99", ("steady", "latency_ms_p99")),
    ("steady_cpu", ("server_cpu_s_steady",)),
)


def ratios_over_sansio(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each transport over uvicorn-sansio, measured within each round, then the median
    (>1 throughput, <1 latency and CPU is better)."""
    out: dict[str, dict[str, Any]] = {}
    names = [name for name in rounds[0] if name != "uvicorn-sansio"] if rounds else []
    for name in names:
        values: dict[str, Any] = {}
        for label, keys in DECIDING:
            per_round = []
            for results in rounds:
                a = fanout.pick(results.get(name, {}), "fanout", keys)
                b = fanout.pick(results.get("uvicorn-sansio", {}), "fanout", keys)
                if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                    per_round.append(a / b)
            values[label] = statistics.median(per_round) if per_round else None
        out[name] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--edits", type=int, default=2000)
    parser.add_argument("--steady-edits", type=int, default=600)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run N rounds (interleaved); report medians"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.quick:
        args.readers, args.edits, args.steady_edits = 10, 1000, 300
    if not (NODE_DIR / "node_modules").is_dir():
        sys.exit(f"run `npm ci` in {NODE_DIR} first")
    options = ["--readers", str(args.readers), "--edits", str(args.edits)]
    options += ["--steady-edits", str(args.steady_edits), "--rate", str(args.rate)]
    names = [n.strip() for n in args.transports.split(",") if n.strip()]
    rounds: list[dict[str, dict[str, Any]]] = []
    for round_number in range(1, max(1, args.repeat) + 1):
        rounds.append({})
        for name in names:
            print(f"round {round_number}: {name} ...", file=sys.stderr, flush=True)
            try:
                running = start(name)
            except RuntimeError as error:  # not installed, say: the others still run
                rounds[-1][name] = {"fanout": {"error": str(error)[-500:]}}
                continue
            try:
                result = run_load(running, "fanout", options, args.timeout)  # type: ignore[arg-type]
            finally:
                stop(running)
            rounds[-1][name] = {"fanout": result}
    results = {name: fanout.median_of([r[name] for r in rounds]) for name in names}
    if len(rounds) > 1:
        print(f"medians of {len(rounds)} rounds")
    fanout.LABELS.update({name: name for name in results})
    rows = [row for row in fanout.ROWS if row[1] == "fanout"]
    fanout.ROWS[:] = rows
    print(table(results))
    best = max(
        (n for n in results if "burst" in results[n]["fanout"]),
        key=lambda n: results[n]["fanout"]["burst"]["edits_per_second"],
        default=None,
    )
    print(f"fastest burst fan-out: {best}")
    for name, result in results.items():
        if "error" in result["fanout"]:
            print(f"{name} failed: {fmt(result['fanout']['error'])[:200]}")
    relative = ratios_over_sansio(rounds)
    for name, values in relative.items():
        shown = ", ".join(f"{key} {fmt(value, 2)}x" for key, value in values.items())
        print(f"{name} / uvicorn-sansio (per round, median): {shown}")
    if args.json:
        config = {k: getattr(args, k) for k in ("readers", "edits", "steady_edits", "rate")}
        report = {
            "benchmark": "transports",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "config": {**config, "repeat": len(rounds)},
            "results": results,
            "rounds": rounds,
            "ratios_over_sansio": relative,
            "fastest": best,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
