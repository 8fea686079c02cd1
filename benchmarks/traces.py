"""Replay real editing traces through meshdoc's text API, raw pycrdt and Yjs, side by side.

    python benchmarks/traces.py [TRACE.json.gz | SYNTHETIC ...] [--repeat N] [--json OUT]
    python benchmarks/traces.py --growth [SIZE ...] [--edits N] [--json OUT]

Without arguments, every trace in `data/traces/` is replayed, then the synthetic traces
(`SYNTHETIC`: random-1k, random-5k, random-20k, bursts-10k), made here from a fixed seed:
short traces are where fixed costs (the first transaction, warm-up, encoding, the cost of
a transaction itself) show, which the long recorded ones hide. Times
are CPU seconds (process time, so that other load on the machine does not count), the best of
`--repeat` runs for Python (default 1) and of at least 3 for Yjs (warm JIT). Each
trace runs three times: through `TextNode` in a `MeshDocument` (one transaction per trace
transaction), through the same `pycrdt.XmlText` with pycrdt's own calls, and through a
`Y.XmlText` in Node (`benchmarks/node/traces_yjs.mjs`). Every replay must end at the trace's
`endContent`. Concurrent traces run one replica per agent: a transaction runs on its agent's
replica after the replica merged the updates of its causal history.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

import meshdoc.text._node as text_module
from meshdoc import MeshDocument, TextNode

HERE = Path(__file__).resolve().parent
TRACES = HERE.parent / "data" / "traces"
NODE_DIR = HERE / "node"

Patch = tuple[int, int, str]


class Replica:
    """One peer: a document, its text, and a way to apply a list of patches as one edit."""

    def __init__(self, engine: str, client_id: int | None = None) -> None:
        self.doc = Doc(client_id=client_id) if client_id is not None else Doc()
        self.last_update: bytes | None = None
        self.capturing = False
        if engine == "meshdoc":
            self.document = MeshDocument(None, doc=self.doc)
            self.apply = self._meshdoc_apply
        else:
            self.apply = self._pycrdt_apply

    def attach(self, engine: str, capture: bool = False) -> None:
        """Find the text made by `base_update` (after it was applied).

        `capture`: keep each transaction's update (concurrent traces send them to the other
        replicas). Sequential replays observe nothing, as the Yjs replay does not.
        """
        paragraph = self.doc.get("default", type=XmlFragment).children[0]
        self.ytext = paragraph.children[0]
        if engine == "meshdoc":
            self.node = TextNode(self.document, self.ytext)
        if capture:
            self.doc.observe(self._on_transaction)

    def _on_transaction(self, event: Any) -> None:
        if self.capturing:
            self.last_update = event.update

    def _meshdoc_apply(self, patches: list[Patch]) -> None:
        node = self.node
        with self.document.transaction():
            for pos, deleted, inserted in patches:
                if deleted:
                    node.delete(pos, deleted)
                if inserted:
                    node.insert(pos, inserted)

    def _pycrdt_apply(self, patches: list[Patch]) -> None:
        ytext = self.ytext
        with self.doc.transaction():
            for pos, deleted, inserted in patches:
                if deleted:
                    del ytext[pos : pos + deleted]
                if inserted:
                    ytext.insert(pos, inserted)

    def text(self) -> str:
        return str(self.node) if hasattr(self, "node") else str(self.ytext)


def base_update(start: str) -> bytes:
    """The shared starting state: one paragraph holding one text (with `start` in it)."""
    doc = Doc(client_id=1 << 30)
    paragraph = doc.get("default", type=XmlFragment).children.append(XmlElement("p"))
    ytext = paragraph.children.append(XmlText())
    if start:
        ytext.insert(0, start)
    return doc.get_update()


def replay_sequential(trace: dict[str, Any], engine: str) -> tuple[float, str]:
    replica = Replica(engine)
    replica.doc.apply_update(base_update(trace.get("startContent", "")))
    replica.attach(engine)
    apply = replica.apply
    txns = [txn["patches"] for txn in trace["txns"]]
    start = time.process_time()
    for patches in txns:
        apply(patches)
    return time.process_time() - start, replica.text()


def replay_concurrent(trace: dict[str, Any], engine: str) -> tuple[float, str]:
    n = trace["numAgents"]
    base = base_update(trace.get("startContent", ""))
    replicas = []
    applied = []
    for agent in range(n):
        replica = Replica(engine, client_id=agent + 1)
        replica.doc.apply_update(base)
        replica.attach(engine, capture=True)
        replicas.append(replica)
        applied.append([0] * n)
    updates: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]
    seen: list[list[int]] = []
    start = time.process_time()
    for i, txn in enumerate(trace["txns"]):
        agent = txn["agent"]
        target = [0] * n
        for p in txn["parents"]:
            target = [max(a, b) for a, b in zip(target, seen[p], strict=True)]
        replica, have = replicas[agent], applied[agent]
        missing: list[tuple[int, bytes]] = []
        for b in range(n):
            if b != agent and have[b] < target[b]:
                missing += updates[b][have[b] : target[b]]
                have[b] = target[b]
        for _, update in sorted(missing):  # trace order: no update waits for another
            replica.doc.apply_update(update)
        if have[agent] != target[agent]:
            raise ValueError(f"transaction {i}: agent {agent}'s history is out of order")
        replica.capturing, replica.last_update = True, None
        replica.apply(txn["patches"])
        replica.capturing = False
        updates[agent].append((i, replica.last_update or b"\x00\x00"))
        have[agent] += 1
        target[agent] += 1
        seen.append(target)
    final = Replica(engine)
    final.doc.apply_update(base)
    final.attach(engine)
    taken = [0] * n
    for txn in trace["txns"]:
        final.doc.apply_update(updates[txn["agent"]][taken[txn["agent"]]][1])
        taken[txn["agent"]] += 1
    return time.process_time() - start, final.text()


def replay(trace: dict[str, Any], engine: str) -> tuple[float, str]:
    """Replay `trace` through `engine`; CPU seconds and the end text.

    The objects alive beforehand (the decoded trace above all: hundreds of thousands of
    lists) are frozen out of the garbage collector's view, so that a full collection during
    the replay scans what the engine made, not the trace. Both Python engines run alike.
    """
    run: Callable[[dict[str, Any], str], tuple[float, str]] = (
        replay_concurrent if trace.get("kind") == "concurrent" else replay_sequential
    )
    gc.collect()
    gc.freeze()
    try:
        return run(trace, engine)
    finally:
        gc.unfreeze()


def replay_yjs(path: Path, repeat: int) -> dict[str, Any]:
    if not (NODE_DIR / "node_modules" / "yjs").exists():
        raise SystemExit(f"run `npm ci` in {NODE_DIR} first (it needs the yjs package)")
    proc = subprocess.run(
        ["node", "traces_yjs.mjs", str(path.resolve()), str(repeat)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"Yjs replay of {path.name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def trace_name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".json")


#: name -> (edits, burst length): random-N are N edits, each its own transaction, at random
#: places; bursts-N are N one-character transactions typed in bursts at random places.
SYNTHETIC = {
    "random-1k": (1_000, 1),
    "random-5k": (5_000, 1),
    "random-20k": (20_000, 1),
    "bursts-10k": (10_000, 40),
}


def synthetic_trace(name: str, seed: int = 22) -> dict[str, Any]:
    """A sequential trace made from a fixed seed (same file format as `data/traces/`).

    random-N: three inserts (1 to 8 characters) to one delete (1 to 4), each its own
    transaction, at uniformly random positions. bursts-N: typing bursts of about `burst`
    keystrokes, one transaction each (a backspace one time in eight), each burst at a random
    place: a person typing, where each keystroke's own transaction is the cost.
    """
    import random

    edits, burst = SYNTHETIC[name]
    rng = random.Random(f"{name}:{seed}")
    text = ""
    txns: list[dict[str, Any]] = []
    alphabet = "abcdefghijklmnopqrstuvwxyz     \n"
    while len(txns) < edits:
        if burst == 1:
            if text and rng.random() < 0.25:
                pos = rng.randrange(len(text))
                n = min(rng.randint(1, 4), len(text) - pos)
                patch = [pos, n, ""]
            else:
                s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
                patch = [rng.randint(0, len(text)), 0, s]
            text = text[: patch[0]] + patch[2] + text[patch[0] + patch[1] :]
            txns.append({"patches": [patch]})
            continue  # (`_replayed` spells the end text)
        pos = rng.randint(0, len(text))
        for _ in range(rng.randint(burst // 2, burst * 3 // 2)):
            if pos and rng.random() < 0.125:
                patch = [pos - 1, 1, ""]
                pos -= 1
            else:
                patch = [pos, 0, rng.choice(alphabet)]
                pos += 1
            text = text[: patch[0]] + patch[2] + text[patch[0] + patch[1] :]
            txns.append({"patches": [patch]})
    return _replayed({"startContent": "", "txns": txns[:edits]})


def _replayed(trace: dict[str, Any]) -> dict[str, Any]:
    text = trace["startContent"]
    for txn in trace["txns"]:
        for pos, deleted, inserted in txn["patches"]:
            text = text[:pos] + inserted + text[pos + deleted :]
    trace["endContent"] = text
    return trace


def load(source: Path | str) -> tuple[str, dict[str, Any], Path | None]:
    """A trace by file or synthetic name: (name, trace, its file if it has one)."""
    if isinstance(source, str) and source in SYNTHETIC:
        return source, synthetic_trace(source), None
    path = Path(source)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return trace_name(path), json.load(f), path


def bench(source: Path | str, repeat: int = 1) -> dict[str, Any]:
    import tempfile

    name, trace, path = load(source)
    ops = sum(len(txn["patches"]) for txn in trace["txns"])
    row: dict[str, Any] = {"trace": name, "ops": ops, "txns": len(trace["txns"])}
    for engine in ("meshdoc", "pycrdt"):
        best = float("inf")
        for _ in range(repeat):
            seconds, text = replay(trace, engine)
            if text != trace["endContent"]:
                raise SystemExit(f"{engine} replay of {path.name} did not reach endContent")
            best = min(best, seconds)
        row[f"{engine}_s"] = round(best, 4)
    if path is None:  # a synthetic trace: Node reads it from a file like the others
        with tempfile.NamedTemporaryFile(suffix=".json.gz", delete=False) as f:
            f.write(gzip.compress(json.dumps(trace).encode()))
        try:
            yjs = replay_yjs(Path(f.name), max(3, repeat))
        finally:
            Path(f.name).unlink()
    else:
        yjs = replay_yjs(path, max(3, repeat))
    if not yjs["ok"]:
        raise SystemExit(f"Yjs replay of {name} did not reach endContent")
    row["yjs_s"] = round(yjs["seconds"], 4)
    row["ratio"] = round(row["meshdoc_s"] / max(yjs["seconds"], 1e-9), 2)
    for engine in ("meshdoc", "yjs"):  # per edit: per patch of the trace
        row[f"{engine}_us_per_edit"] = round(row[f"{engine}_s"] / max(ops, 1) * 1e6, 2)
    return row


def growth_row(size: int, edits: int, seed: int = 1) -> dict[str, Any]:
    """Per-edit cost of random single-character inserts into a text of `size` characters.

    The text is built by `size` random inserts (so it holds many items, as real edited text
    does); the same `edits` random inserts are then timed, one transaction each, in every
    engine, after untimed warm-up edits (meshdoc builds its item index there).
    """
    import base64
    import random
    import tempfile

    rng = random.Random(seed)
    builder = Replica("meshdoc")
    builder.doc.apply_update(base_update(""))
    builder.attach("meshdoc")
    for n in range(size):
        builder.node.insert(rng.randint(0, n), chr(97 + rng.randrange(26)))
    update = builder.doc.get_update()
    warmup = text_module.FAST_PATH_MIN_EDITS + 1  # the index is built within these
    plan = []
    for n in range(size, size + warmup + edits):
        plan.append((rng.randint(0, n), chr(97 + rng.randrange(26))))
    row: dict[str, Any] = {"size": size, "edits": edits}
    for engine in ("meshdoc", "pycrdt"):
        replica = Replica(engine)
        replica.doc.apply_update(update)
        replica.attach(engine)
        for pos, char in plan[:warmup]:
            replica.apply([(pos, 0, char)])
        gc.collect()
        gc.freeze()  # as in `replay`: a full collection of what exists is not one edit's cost
        try:
            start = time.process_time()
            for pos, char in plan[warmup:]:
                replica.apply([(pos, 0, char)])
            row[f"{engine}_us"] = round((time.process_time() - start) / edits * 1e6, 1)
        finally:
            gc.unfreeze()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"update": base64.b64encode(update).decode(), "edits": plan, "warmup": warmup}, f)
    try:
        proc = subprocess.run(
            ["node", "traces_yjs.mjs", "--edits", f.name],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        Path(f.name).unlink()
    if proc.returncode != 0:
        raise SystemExit(f"Yjs growth run failed:\n{proc.stderr}")
    row["yjs_us"] = round(json.loads(proc.stdout)["seconds"] / edits * 1e6, 1)
    return row


def print_growth(rows: list[dict[str, Any]]) -> None:
    header = f"{'text size':>10} {'meshdoc us/edit':>16} {'pycrdt us/edit':>15} {'Yjs us/edit':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['size']:>10} {r['meshdoc_us']:>16.1f} {r['pycrdt_us']:>15.1f} {r['yjs_us']:>12.1f}"
        )


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'trace':<26} {'ops':>8} {'meshdoc s':>10} {'pycrdt s':>9} {'Yjs s':>7} {'ratio':>6}"
        f" {'meshdoc us/edit':>16} {'Yjs us/edit':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['trace']:<26} {r['ops']:>8} {r['meshdoc_s']:>10.3f} {r['pycrdt_s']:>9.3f}"
            f" {r['yjs_s']:>7.3f} {r['ratio']:>6.2f} {r['meshdoc_us_per_edit']:>16.2f}"
            f" {r['yjs_us_per_edit']:>12.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "traces", nargs="*", type=Path, help="trace files (.json.gz) or synthetic trace names"
    )
    parser.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Python runs per engine, best kept (Yjs: 3+)"
    )
    parser.add_argument(
        "--growth",
        type=int,
        nargs="*",
        metavar="SIZE",
        help="instead of traces: cost of one random insert at these text sizes "
        "(default 10000 50000 100000)",
    )
    parser.add_argument("--edits", type=int, default=1000, help="timed edits per size (--growth)")
    args = parser.parse_args(argv)
    if args.growth is not None:
        sizes = args.growth or [10_000, 50_000, 100_000]
        growth = []
        for size in sizes:
            growth.append(growth_row(size, args.edits))
            print(f"done: {growth[-1]}", file=sys.stderr, flush=True)
        print_growth(growth)
        if args.json:
            args.json.write_text(json.dumps(growth, indent=2) + "\n")
        return 0
    paths: list[Path | str] = list(args.traces) or [*sorted(TRACES.glob("*.json.gz")), *SYNTHETIC]
    if not paths:
        raise SystemExit(f"no traces given and none found in {TRACES}")
    rows = []
    for path in paths:
        rows.append(bench(str(path) if str(path) in SYNTHETIC else path, args.repeat))
        print(f"done: {rows[-1]}", file=sys.stderr, flush=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
