"""Fan-out benchmark: meshroom against the reference Node server and pycrdt-websocket.

Same load, same machine, same run, for each server:

- **fan-out**: 1 writer and 20 readers on one document; 2,000 edits as fast as the
  writer can make them (edits/s delivered to every reader, latency p50/p99), then a
  steady 200 edits/s (latency, server CPU seconds);
- **rooms**: 200 rooms x 2 clients joining at once (time until all are synced,
  reconnects), one edit per room, and server RSS per room.

The load is real `y-websocket` clients in one Node process
(`benchmarks/node/fanout_load.mjs`); each server runs as its own process on a free
port, and the driver samples its CPU time and RSS from `/proc`.

    python benchmarks/fanout.py                      # all three servers, full load
    python benchmarks/fanout.py --quick              # small load, for a smoke run
    python benchmarks/fanout.py --servers meshroom,node --json out.json
    python benchmarks/fanout.py --servers meshroom,meshroom-observed --repeat 3

`meshroom-observed` is `meshroom` with the activity log and Prometheus metrics on (the
plain `meshroom` runs with `--no-activity`); `meshroom-disk-observed` the same with
`--storage`. Their ratios to the plain servers are printed as `observed/plain`.
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
LOAD = NODE_DIR / "fanout_load.mjs"
NODE_SERVER = NODE_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVERS = ("meshroom", "meshroom-disk", "node", "pycrdt")
#: Also runnable (not by default): the same meshroom servers with activity log and metrics on.
OBSERVED = ("meshroom-observed", "meshroom-disk-observed")
LABELS = {
    "meshroom": "meshroom",
    "meshroom-disk": "meshroom --storage",
    "meshroom-observed": "meshroom + activity, metrics",
    "meshroom-disk-observed": "meshroom --storage + activity, metrics",
    "node": "@y/websocket-server 0.1.1",
    "pycrdt": "pycrdt-websocket 0.16.5",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def server_command(name: str, port: int) -> list[str]:
    if name == "meshroom":
        # `meshroom serve` as it runs (memory mode, same uvicorn options), but without the
        # per-address connection cap: every benchmark client comes from 127.0.0.1
        return [sys.executable, str(Path(__file__).resolve()), "--serve-meshroom", str(port)]
    if name == "meshroom-disk":
        # the same, storing to a folder: every update is fsynced to its log before relay
        return [sys.executable, str(Path(__file__).resolve()), "--serve-meshroom-disk", str(port)]
    if name in OBSERVED:
        flag = "--serve-meshroom-disk" if name == "meshroom-disk-observed" else "--serve-meshroom"
        return [sys.executable, str(Path(__file__).resolve()), flag, str(port), "--observed"]
    if name == "node":
        return ["node", str(NODE_SERVER)]
    if name == "pycrdt":
        return [sys.executable, str(Path(__file__).resolve()), "--serve-pycrdt", str(port)]
    raise ValueError(f"unknown server {name!r}: choose from {', '.join(SERVERS + OBSERVED)}")


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @classmethod
    def start(cls, name: str, command: list[str] | None = None) -> Server:
        """Start server `name` (or `command`, with PORT in its environment) on a free port."""
        port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        process = subprocess.Popen(
            command or server_command(name, port),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,  # a file, not a pipe: a chatty server must never block on it
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                error = log.read().decode(errors="replace")
                raise RuntimeError(f"{name} server exited: {error[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            process.kill()
            raise RuntimeError(f"{name} server did not listen on {port} within 30 s")
        time.sleep(0.3)  # let it finish starting up before sampling memory
        return cls(name, port, process, log)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run_load(
    server: Server, scenario: str, options: list[str], timeout: float, load_script: Path = LOAD
) -> dict[str, Any]:
    """Run the Node load against `server`; sample CPU at phases and RSS at measure points."""
    pid = server.process.pid
    command = ["node", str(load_script), scenario, "--url", server.url, "--timeout", str(timeout)]
    load = subprocess.Popen(
        command + options,
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None and load.stdin is not None
    cpu: dict[str, float] = {}
    rss: dict[str, int] = {}
    result: dict[str, Any] = {}
    for line in load.stdout:
        words = line.split(maxsplit=2)
        if not words:
            continue
        if words[0] == "@phase":
            cpu[f"{words[1]}_{words[2].strip()}"] = cpu_seconds(pid)
        elif words[0] == "@measure":
            rss[words[1]] = rss_kib(pid)
            load.stdin.write("\n")
            load.stdin.flush()
        elif words[0] == "@result":
            result = json.loads(line.split(maxsplit=1)[1])
    load.wait()
    if load.returncode != 0 or not result:
        error = load.stderr.read() if load.stderr else ""
        return {"error": error.strip()[-500:] or f"load exited with {load.returncode}"}
    for phase in ("burst", "steady", "rooms-edit"):
        if f"{phase}_start" in cpu and f"{phase}_end" in cpu:
            result[f"server_cpu_s_{phase.replace('-', '_')}"] = (
                cpu[f"{phase}_end"] - cpu[f"{phase}_start"]
            )
    if "empty" in rss and "rooms" in rss:
        result["rss_kib_empty"] = rss["empty"]
        result["rss_kib_rooms"] = rss["rooms"]
        result["rss_kib_per_room"] = (rss["rooms"] - rss["empty"]) / result["rooms"]
    return result


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    fanout_options = [
        "--readers",
        str(args.readers),
        "--edits",
        str(args.edits),
        "--steady-edits",
        str(args.steady_edits),
        "--rate",
        str(args.rate),
    ]
    results: dict[str, Any] = {}
    for scenario, options in (("fanout", fanout_options), ("rooms", ["--rooms", str(args.rooms)])):
        server = Server.start(name)  # a fresh process per scenario: memory is not shared
        try:
            results[scenario] = run_load(server, scenario, options, args.timeout)
        finally:
            server.stop()
    return results


def median_of(runs: list[Any]) -> Any:
    """Median of each number across runs (machines shared with other jobs are noisy)."""
    first = runs[0]
    if isinstance(first, dict):
        if any("error" in run for run in runs):
            return next(run for run in runs if "error" in run)
        return {key: median_of([run.get(key) for run in runs]) for key in first}
    numbers = [run for run in runs if isinstance(run, (int, float)) and not isinstance(run, bool)]
    if len(numbers) == len(runs):
        return statistics.median(numbers)
    if all(isinstance(run, bool) for run in runs):
        return all(runs)
    return first


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


ROWS = [
    ("edits/s to all readers (burst)", "fanout", ("burst", "edits_per_second"), 0),
    ("burst latency p50 ms", "fanout", ("burst", "latency_ms_p50"), 1),
    ("burst latency p99 ms", "fanout", ("burst", "latency_ms_p99"), 1),
    ("steady latency p50 ms", "fanout", ("steady", "latency_ms_p50"), 2),
    ("steady latency p99 ms", "fanout", ("steady", "latency_ms_p99"), 2),
    ("server CPU s (steady)", "fanout", ("server_cpu_s_steady",), 2),
    ("server CPU s (burst)", "fanout", ("server_cpu_s_burst",), 2),
    ("reader connect p50 ms", "fanout", ("connect_ms_p50",), 1),
    ("rooms: all joined s", "rooms", ("all_connected_s",), 2),
    ("rooms: connect p99 ms", "rooms", ("connect_ms_p99",), 0),
    ("rooms: reconnects", "rooms", ("reconnects",), 0),
    ("rooms: edit latency p99 ms", "rooms", ("edit_latency_ms_p99",), 1),
    ("server RSS per room KiB", "rooms", ("rss_kib_per_room",), 1),
]


def pick(results: dict[str, Any], scenario: str, keys: tuple[str, ...]) -> Any:
    value: Any = results.get(scenario, {})
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def ratios(all_results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """meshroom relative to each other server (>1 throughput, <1 latency/memory is better);
    `meshroom-disk` relative to the Node server too, under the key `disk/node`."""
    out: dict[str, dict[str, float | None]] = {}
    mine = all_results.get("meshroom")
    if not mine:
        return out
    pairs = [
        (other, mine, theirs)
        for other, theirs in all_results.items()
        if other != "meshroom" and other not in OBSERVED
    ]
    if "meshroom-disk" in all_results and "node" in all_results:
        pairs.append(("disk/node", all_results["meshroom-disk"], all_results["node"]))
    for observed, plain in (
        ("meshroom-observed", "meshroom"),
        ("meshroom-disk-observed", "meshroom-disk"),
    ):
        if observed in all_results and plain in all_results:
            key = "observed/plain" if plain == "meshroom" else "disk observed/plain"
            pairs.append((key, all_results[observed], all_results[plain]))
    for other, mine, theirs in pairs:

        def ratio(scenario: str, keys: tuple[str, ...], mine: Any = mine, theirs: Any = theirs):
            a, b = pick(mine, scenario, keys), pick(theirs, scenario, keys)
            return (
                a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
            )

        out[other] = {
            "throughput": ratio("fanout", ("burst", "edits_per_second")),
            "burst_p99": ratio("fanout", ("burst", "latency_ms_p99")),
            "steady_p50": ratio("fanout", ("steady", "latency_ms_p50")),
            "steady_p99": ratio("fanout", ("steady", "latency_ms_p99")),
            "steady_cpu": ratio("fanout", ("server_cpu_s_steady",)),
            "rss_per_room": ratio("rooms", ("rss_kib_per_room",)),
            "rooms_all_joined": ratio("rooms", ("all_connected_s",)),
        }
    return out


def table(all_results: dict[str, dict[str, Any]]) -> str:
    names = list(all_results)
    header = ["", *(LABELS[name] for name in names)]
    lines = [header]
    for label, scenario, keys, digits in ROWS:
        lines.append([label, *(fmt(pick(all_results[n], scenario, keys), digits) for n in names)])
    widths = [max(len(row[i]) for row in lines if i < len(row)) for i in range(len(header))]
    rendered = []
    for index, row in enumerate(lines):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        rendered.append("| " + " | ".join(cells) + " |")
        if index == 0:
            rendered.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(rendered)


def serve_meshroom(port: int, storage: str | None = None, observed: bool = False) -> None:
    """`meshroom serve` (same app, transport and options; `storage`: a folder to store
    in), with no cap on connections per address: every client connects from 127.0.0.1.
    `observed`: with the activity log and metrics (`--metrics`), else `--no-activity`."""
    import functools

    from meshroom import Limits
    from meshroom.cli import _serve as _cli_serve

    _cli_serve.Limits = functools.partial(Limits, max_connections_per_ip=0)  # type: ignore[misc]
    config = _cli_serve.ServeConfig(
        host="127.0.0.1",
        port=port,
        log_level="warning",
        storage=storage,
        activity=observed,
        metrics=observed,
    )
    _cli_serve.run(config)


def serve_pycrdt(port: int) -> None:
    """pycrdt-websocket's own server behind uvicorn: the reference Python Yjs server."""
    import anyio
    import uvicorn
    from pycrdt.websocket import ASGIServer, WebsocketServer

    async def main() -> None:
        async with WebsocketServer() as websocket_server:
            app = ASGIServer(websocket_server)
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            await uvicorn.Server(config).serve()

    anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--edits", type=int, default=2000)
    parser.add_argument("--steady-edits", type=int, default=600)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120, help="seconds per phase")
    parser.add_argument("--quick", action="store_true", help="small load for a smoke run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run N rounds (servers interleaved); report medians"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--serve-pycrdt", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-meshroom", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-meshroom-disk", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--observed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_pycrdt:
        serve_pycrdt(args.serve_pycrdt)
        return
    if args.serve_meshroom:
        serve_meshroom(args.serve_meshroom, observed=args.observed)
        return
    if args.serve_meshroom_disk:
        with tempfile.TemporaryDirectory(prefix="fanout-rooms-") as folder:
            serve_meshroom(args.serve_meshroom_disk, storage=folder, observed=args.observed)
        return
    if args.quick:
        args.readers, args.edits, args.steady_edits, args.rooms = 5, 200, 100, 20
    if not (NODE_DIR / "node_modules").is_dir():
        sys.exit(f"run `npm ci` in {NODE_DIR} first")
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    for name in names:
        server_command(name, 0)  # unknown names fail before anything runs
    rounds: list[dict[str, dict[str, Any]]] = []
    for round_number in range(1, max(1, args.repeat) + 1):
        rounds.append({})
        for name in names:
            print(f"round {round_number}: {LABELS[name]} ...", file=sys.stderr, flush=True)
            rounds[-1][name] = bench(name, args)
    all_results = {name: median_of([r[name] for r in rounds]) for name in names}
    if len(rounds) > 1:
        print(f"medians of {len(rounds)} rounds")
    print(table(all_results))
    for name, results in all_results.items():
        for scenario, result in results.items():
            if "error" in result:
                print(f"{LABELS[name]} {scenario} failed: {result['error'].splitlines()[0]}")
    relative = ratios(all_results)
    for other, values in relative.items():
        shown = ", ".join(f"{key} {fmt(value, 2)}x" for key, value in values.items())
        print(f"meshroom / {LABELS.get(other, other)}: {shown}")
    if args.json:
        config = {
            key: getattr(args, key) for key in ("readers", "edits", "steady_edits", "rate", "rooms")
        }
        report = {
            "benchmark": "fanout",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "config": config,
            "results": all_results,
            "rounds": rounds,
            "ratios_meshroom_over": relative,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
