"""Hocuspocus benchmark: meshroom against `@hocuspocus/server`, both serving the npm provider.

Same load, same machine, same run: identical `@hocuspocus/provider` clients
(`benchmarks/node/fanout_load.mjs --provider hocuspocus`, each on a socket of its own) against

- `meshroom serve` (memory storage, no activity log: `fanout.py`'s `meshroom`), whose
  root path ``ws://host:port`` is its Hocuspocus endpoint, and
- `@hocuspocus/server` from npm with no extension (`benchmarks/node/hocuspocus_server.mjs`).

Scenarios (those of `fanout.py`): **fan-out**, 1 writer and 20 readers on one document,
2,000 edits as fast as the writer makes them (edits/s delivered to every reader, latency
p50/p99), then 600 at a steady 200/s; **rooms**, 200 rooms x 2 clients joining at once,
one edit per room, then the server's RSS per idle room (its two clients connected).

The writer has a process of its own and the 20 readers are spread over four more
(`--reader-processes 4`): in one Node process, the client decoding every update for every
reader is what saturates, and both servers then measure the same. Even so the load needs
more CPU than either server, and two cores serve both, so the table also gives what each
server spent: server CPU per 1,000 edits fanned out, and the edits/s one server core
sustains at that cost.

    python benchmarks/hocuspocus.py                  # full load, results/hocuspocus.json
    python benchmarks/hocuspocus.py --repeat 3       # three rounds, servers interleaved: medians
    python benchmarks/hocuspocus.py --quick          # a smoke run (no JSON unless --json)

The goals (issue 21): at least 1.5x the throughput, a p99 no higher, memory per room no
higher. The table says plainly which are met in this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout  # the sibling benchmark: servers, load runner, sampling

HERE = Path(__file__).resolve().parent
PROVIDER = ["--provider", "hocuspocus"]
HOCUSPOCUS_SERVER = HERE / "node" / "hocuspocus_server.mjs"
RESULTS = HERE / "results" / "hocuspocus.json"
SERVERS = ("meshroom", "hocuspocus")


def _version(package: str) -> str:
    manifest = HERE / "node" / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text())["version"]


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = ["node", str(HOCUSPOCUS_SERVER)] if name == "hocuspocus" else None
    fanout_options = [*PROVIDER, "--readers", str(args.readers), "--edits", str(args.edits)]
    fanout_options += ["--reader-processes", str(args.reader_processes)]
    fanout_options += ["--steady-edits", str(args.steady_edits), "--rate", str(args.rate)]
    results: dict[str, Any] = {}
    rooms_options = [*PROVIDER, "--rooms", str(args.rooms)]
    for scenario, options in (("fanout", fanout_options), ("rooms", rooms_options)):
        server = fanout.Server.start("meshroom" if name == "meshroom" else name, command)
        try:
            results[scenario] = fanout.run_load(server, scenario, options, args.timeout)
        finally:
            server.stop()
    cpu, edits = _get(results, "fanout", "server_cpu_s_burst"), args.edits
    if cpu:  # what the server spent: per 1,000 edits, and the rate one core would sustain
        results["fanout"]["server_cpu_ms_per_1000_edits"] = cpu * 1000 / edits * 1000
        results["fanout"]["edits_per_server_cpu_second"] = edits / cpu
    return results


def _get(results: dict[str, Any], *keys: str) -> Any:
    value: Any = results
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


ROWS = (
    ("fan-out burst, edits/s", ("fanout", "burst", "edits_per_second"), 0),
    ("fan-out burst p50 ms", ("fanout", "burst", "latency_ms_p50"), 1),
    ("fan-out burst p99 ms", ("fanout", "burst", "latency_ms_p99"), 1),
    ("fan-out steady p99 ms", ("fanout", "steady", "latency_ms_p99"), 1),
    ("fan-out burst client CPU s", ("fanout", "burst", "client_cpu_s"), 2),
    ("fan-out burst server CPU s", ("fanout", "server_cpu_s_burst"), 2),
    ("server CPU ms per 1,000 edits", ("fanout", "server_cpu_ms_per_1000_edits"), 0),
    ("edits/s per server CPU second", ("fanout", "edits_per_server_cpu_second"), 0),
    ("fan-out reconnects", ("fanout", "reconnects"), 0),
    ("rooms: all synced, s", ("rooms", "all_connected_s"), 2),
    ("rooms: edit p99 ms", ("rooms", "edit_latency_ms_p99"), 1),
    ("rooms: KiB per idle room", ("rooms", "rss_kib_per_room"), 1),
    ("rooms: reconnects", ("rooms", "reconnects"), 0),
)


def goals(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """The issue's three goals, each with both figures, the ratio and whether it is met."""

    def ratio(keys: tuple[str, ...]) -> tuple[Any, Any, float | None]:
        a, b = _get(mine, *keys), _get(theirs, *keys)
        return a, b, (a / b if a is not None and b else None)

    throughput = ratio(("fanout", "burst", "edits_per_second"))
    capacity = ratio(("fanout", "edits_per_server_cpu_second"))
    p99 = ratio(("fanout", "burst", "latency_ms_p99"))
    steady_p99 = ratio(("fanout", "steady", "latency_ms_p99"))
    memory = ratio(("rooms", "rss_kib_per_room"))
    return {
        "throughput_ratio": throughput[2],
        "throughput_met": throughput[2] is not None and throughput[2] >= 1.5,
        "server_cpu_throughput_ratio": capacity[2],
        "p99_ratio": p99[2],
        "p99_met": p99[2] is not None and p99[2] <= 1.0,
        "steady_p99_ratio": steady_p99[2],
        "steady_p99_met": steady_p99[2] is not None and steady_p99[2] <= 1.0,
        "memory_per_room_ratio": memory[2],
        "memory_per_room_met": memory[2] is not None and memory[2] <= 1.0,
    }


def table(all_results: dict[str, dict[str, Any]], goal: dict[str, Any]) -> str:
    header = ["", "meshroom", f"@hocuspocus/server {_version('@hocuspocus/server')}"]
    lines = [header]
    for label, keys, digits in ROWS:
        lines.append([label, *(fanout.fmt(_get(all_results[n], *keys), digits) for n in SERVERS)])
    widths = [max(len(row[i]) for row in lines) for i in range(3)]
    text = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in lines]
    text.insert(1, "-+-".join("-" * width for width in widths))

    def verdict(name: str, ratio_key: str, met_key: str, wanted: str) -> str:
        value = goal[ratio_key]
        shown = "n/a" if value is None else f"{value:.2f}x"
        return f"{name}: meshroom/hocuspocus = {shown} (goal {wanted}): " + (
            "met" if goal[met_key] else "NOT met"
        )

    text += [
        "",
        verdict("throughput", "throughput_ratio", "throughput_met", ">= 1.5x"),
        "edits per server CPU second: meshroom/hocuspocus = "
        + (
            "n/a"
            if goal["server_cpu_throughput_ratio"] is None
            else f"{goal['server_cpu_throughput_ratio']:.2f}x"
        ),
        verdict("burst p99", "p99_ratio", "p99_met", "<= 1.0x"),
        verdict("steady p99", "steady_p99_ratio", "steady_p99_met", "<= 1.0x"),
        verdict("memory per idle room", "memory_per_room_ratio", "memory_per_room_met", "<= 1.0x"),
    ]
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small load, for a smoke run")
    parser.add_argument("--json", type=Path, help=f"write results here (default {RESULTS})")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run N rounds (servers interleaved); report medians"
    )
    parser.add_argument(
        "--reader-processes", type=int, default=4, help="Node processes the readers share"
    )
    args = parser.parse_args()
    args.readers, args.edits, args.steady_edits, args.rate, args.rooms = (
        (5, 200, 50, 200, 20) if args.quick else (20, 2000, 600, 200, 200)
    )
    rounds = [{name: bench(name, args) for name in SERVERS} for _ in range(max(1, args.repeat))]
    all_results = {name: fanout.median_of([r[name] for r in rounds]) for name in SERVERS}
    if len(rounds) > 1:
        print(f"medians of {len(rounds)} rounds")
    goal = goals(all_results["meshroom"], all_results["hocuspocus"])
    print(table(all_results, goal))
    for name, results in all_results.items():
        for scenario, result in results.items():
            if "error" in result:
                print(f"{name} {scenario}: {result['error']}", file=sys.stderr)
    target = args.json or (None if args.quick else RESULTS)
    if target is not None:
        report = {
            "machine": {"python": platform.python_version(), "cpus": fanout.os.cpu_count()},
            "load": {
                "client": f"@hocuspocus/provider {_version('@hocuspocus/provider')}",
                "readers": args.readers,
                "edits": args.edits,
                "steady_edits": args.steady_edits,
                "rate": args.rate,
                "rooms": args.rooms,
                "reader_processes": args.reader_processes,
                "rounds": len(rounds),
            },
            "servers": {
                "meshroom": "meshroom serve (memory storage, no activity log)",
                "hocuspocus": f"@hocuspocus/server {_version('@hocuspocus/server')}, no extension",
            },
            "results": all_results,
            "goals": goal,
        }
        target.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
