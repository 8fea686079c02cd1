"""Churn benchmark: does a server give back the memory of rooms that closed?

Short sessions (connect, sync, one edit, leave) in `--rooms` rooms, `--sessions` per
phase, run against each server as its own process; after each phase every room is
empty, and the server's RSS is read from `/proc` once it had time to close them. A
server that keeps something per session grows phase after phase; one that does not
levels off after the first. "Kept per session" is the growth from the end of phase 1
to the end of the last phase, divided by the sessions of those later phases.

The meshroom servers: `meshroom` is `meshroom serve` as it starts without options
(documents kept in memory storage, so a reopened room loads everything its document
ever received), `meshroom-disk` the same with `--storage` on a temporary folder, and
`meshroom-bare` the same server without any storage (a closed room's document is gone).

    python benchmarks/churn.py                       # every meshroom server and Node's
    python benchmarks/churn.py --servers meshroom,node --phases 8 --sessions 3000 --json out.json

The clients are plain y-websocket peers written with `websockets` (sync step 1, one
update), the same bytes a browser's provider sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fanout
import pycrdt
from fanout import NODE_SERVER, Server, rss_kib
from websockets.asyncio.client import connect

SERVERS = ("meshroom", "meshroom-disk", "meshroom-bare", "node")
LABELS = {
    "meshroom": "meshroom (memory storage)",
    "meshroom-disk": "meshroom --storage DIR",
    "meshroom-bare": "meshroom, no storage",
    "node": fanout.LABELS["node"],
}
#: Storage folders of the servers started, removed after each run.
_FOLDERS: list[str] = []


def _command(name: str, port: int) -> list[str]:
    serve = [
        *(sys.executable, "-m", "meshroom", "serve", "--host", "127.0.0.1"),
        *("--port", str(port), "--grace-period", "0", "--log-level", "warning"),
    ]
    if name == "meshroom":
        return serve
    if name == "meshroom-disk":
        folder = tempfile.mkdtemp(prefix="churn-rooms-")
        _FOLDERS.append(folder)  # removed once the server stopped
        return [sys.executable, __file__, "--serve-disk", str(port), folder]
    if name == "meshroom-bare":
        return [sys.executable, __file__, "--serve-bare", str(port)]
    if name == "node":
        return ["node", str(NODE_SERVER)]
    raise ValueError(f"unknown server {name!r}: choose from {', '.join(SERVERS)}")


def _serve(port: int, *, storage: str | None, bare: bool = False) -> None:
    """`meshroom serve --grace-period 0` (its app, transport and limits), on `storage`,
    or without storage at all when `bare` (no CLI option turns the default off)."""
    from meshroom.cli import _serve as _cli_serve

    if bare:
        _cli_serve._storage_extension = lambda url, config: None  # type: ignore[assignment]
    config = _cli_serve.ServeConfig(
        host="127.0.0.1", port=port, storage=storage, grace_period=0, log_level="warning"
    )
    _cli_serve.run(config)


def _edit(index: int) -> bytes:
    doc = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, f"session {index}")
    update = doc.get_update()
    return bytes([0, 2]) + _var_uint(len(update)) + update


def _var_uint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(0x80 | (number & 0x7F))
        number >>= 7
    out.append(number)
    return bytes(out)


async def _session(url: str, index: int) -> None:
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send(bytes([0, 0, 1, 0]))  # sync step 1 with an empty state vector
        while True:
            message = await ws.recv()
            if isinstance(message, bytes) and message[:2] == b"\x00\x01":  # sync step 2
                break
        await ws.send(_edit(index))


async def _phase(base: str, rooms: int, start: int, count: int, concurrency: int) -> None:
    pending = iter(range(start, start + count))

    async def worker() -> None:
        for index in pending:
            await _session(f"{base}/room-{index % rooms}/doc", index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    fanout.server_command = _command  # fan-out's process runner, with this benchmark's servers
    server = Server.start(name)
    try:
        rss = [rss_kib(server.process.pid)]
        started = time.monotonic()
        for phase in range(args.phases):
            asyncio.run(
                _phase(server.url, args.rooms, phase * args.sessions, args.sessions, args.clients)
            )
            time.sleep(args.settle)  # rooms close after their last client left
            rss.append(rss_kib(server.process.pid))
        seconds = time.monotonic() - started
    finally:
        server.stop()
        while _FOLDERS:
            shutil.rmtree(_FOLDERS.pop(), ignore_errors=True)
    sessions = args.phases * args.sessions
    # rss[0] is the start and rss[k] the end of phase k: from the end of phase 1 on, the
    # first rooms, caches and pools exist, so what grows further is kept per session.
    after_first = rss[1:]
    growth = (
        (after_first[-1] - after_first[0]) * 1024 / max(1, (len(after_first) - 1) * args.sessions)
    )
    return {
        "rss_kib_per_phase": rss,
        "sessions": sessions,
        "seconds": round(seconds, 1),
        "bytes_kept_per_session_after_phase_1": round(growth, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--phases", type=int, default=6)
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per phase")
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10, help="sessions at once")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds after a phase")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve-disk", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_disk:
        _serve(int(args.serve_disk[0]), storage=args.serve_disk[1])
        return
    if args.serve_bare:
        _serve(args.serve_bare, storage=None, bare=True)
        return
    if args.phases < 2:
        parser.error("--phases must be at least 2 (growth is measured after the first)")
    results = {}
    for name in (n.strip() for n in args.servers.split(",") if n.strip()):
        print(f"{LABELS[name]} ...", file=sys.stderr, flush=True)
        results[name] = run(name, args)
    header = f"| phase | {' | '.join(LABELS[n] + ' RSS MiB' for n in results)} |"
    print(header)
    print("|" + "---|" * (len(results) + 1))
    for phase in range(args.phases + 1):
        cells = [f"{results[n]['rss_kib_per_phase'][phase] / 1024:.1f}" for n in results]
        print(f"| {'start' if phase == 0 else phase} | {' | '.join(cells)} |")
    for name, result in results.items():
        kept = result["bytes_kept_per_session_after_phase_1"]
        print(f"{LABELS[name]}: {result['sessions']} sessions, {kept} bytes kept per session")
    if args.json:
        report = {
            "benchmark": "churn",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "config": {k: getattr(args, k) for k in ("phases", "sessions", "rooms", "clients")},
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
