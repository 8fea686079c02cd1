"""Storage benchmark: write amplification, load time from snapshot + log, compaction time.

All through the real `StorageExtension` and `FsspecStorage` on a local folder
(fsync on, as `meshroom serve` uses it):

- **write amplification**: a client types one character per edit (in runs of 50
  at random places), 100 edits/s, into a small (1 KB) and a large (1 MB)
  document. Bytes written to the log and
  to snapshots, per edit and per debounce window (one snapshot), against the
  bytes of the Yjs updates themselves. Times are scaled down (debounce 0.25 s,
  max delay 1 s) so a run is short; bytes per edit do not depend on the scale.
- **load**: a room whose log holds 10k / 100k single-character updates (typed
  in runs of 50 at random places, appended in 50-update batches as the 50 ms
  flush writes them) on top of a 100 KB snapshot: time for `on_load_document`
  (read + replay).
- **compaction**: time to fold that log into a new snapshot (encode, atomic
  write, delete the segments).

    python benchmarks/storage.py                 # full run
    python benchmarks/storage.py --quick         # smaller sizes, for a smoke run
    python benchmarks/storage.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from pycrdt import Doc, Text

from meshroom import ChangePayload, LoadDocumentPayload, StoreDocumentPayload
from meshroom.storage import FsspecStorage, SnapshotSource, StorageExtension

RECORD_HEADER = 8


class CountingStorage:
    """Delegates to a real provider and counts what it writes."""

    def __init__(self, inner: FsspecStorage) -> None:
        self.inner = inner
        self.log_bytes = 0
        self.log_writes = 0
        self.snapshot_bytes = 0
        self.snapshot_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append_updates(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        await self.inner.append_updates(room, path, updates)
        self.log_writes += 1
        self.log_bytes += sum(len(u) + RECORD_HEADER for u in updates)

    async def compact(self, room: str, path: str, snapshot: SnapshotSource) -> None:
        def counted() -> bytes:
            data = snapshot() if callable(snapshot) else snapshot
            self.snapshot_bytes += len(data)
            self.snapshot_writes += 1
            return data

        await self.inner.compact(room, path, counted)


async def write_amplification(root: Path, size: int, seconds: float) -> dict[str, Any]:
    storage = CountingStorage(FsspecStorage(str(root / f"amp-{size}")))
    async with StorageExtension(storage, debounce=0.25, max_delay=1.0) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("bench", "doc", doc))
        text = doc.get("text", type=Text)
        text += "x" * size  # the document's existing content
        await ext.on_change(ChangePayload("bench", "doc", doc, doc.get_update(), origin=None))
        await ext.on_store_document(StoreDocumentPayload("bench", "doc", doc, "explicit"))
        base_log, base_snap = storage.log_bytes, storage.snapshot_bytes
        base_snaps = storage.snapshot_writes
        edits = int(seconds * 100)
        update_bytes = 0
        for i in range(edits):
            before = doc.get_state()
            text.insert(typing_position(i, size), "abcdefghij"[i % 10])
            update = doc.get_update(before)
            update_bytes += len(update)
            await ext.on_change(ChangePayload("bench", "doc", doc, update, origin=None))
            await anyio.sleep(0.01)
        await ext.on_store_document(StoreDocumentPayload("bench", "doc", doc, "explicit"))
    log_bytes = storage.log_bytes - base_log
    snapshot_bytes = storage.snapshot_bytes - base_snap
    snapshots = storage.snapshot_writes - base_snaps
    written = log_bytes + snapshot_bytes
    return {
        "document_bytes": size,
        "edits": edits,
        "update_bytes": update_bytes,
        "log_bytes": log_bytes,
        "snapshots": snapshots,
        "snapshot_bytes": snapshot_bytes,
        "bytes_per_edit": written / edits,
        "log_bytes_per_edit": log_bytes / edits,
        "bytes_per_window": written / max(snapshots, 1),
        "amplification": written / update_bytes,
    }


async def load_and_compact(root: Path, updates: int) -> dict[str, Any]:
    storage = FsspecStorage(str(root / f"load-{updates}"))
    doc = Doc()
    text = doc.get("text", type=Text)
    text += "y" * 100_000
    await storage.write_snapshot("bench", "doc", doc.get_update())
    batch: list[bytes] = []
    # Each transaction's own update, as the server receives it from a client.
    subscription = doc.observe(lambda event: batch.append(event.update))
    for i in range(updates):
        text.insert(typing_position(i, 100_000), "z")
        if len(batch) == 50:
            await storage.append_updates("bench", "doc", batch)
            batch.clear()
    doc.unobserve(subscription)
    if batch:
        await storage.append_updates("bench", "doc", batch)
    log_dir = root / f"load-{updates}" / "bench" / "docs" / "doc.ydoc" / "log"
    log_size = sum(p.stat().st_size for p in log_dir.iterdir())
    expected = str(text)

    fresh = FsspecStorage(str(root / f"load-{updates}"))
    async with StorageExtension(fresh) as ext:
        loaded = Doc()
        started = time.perf_counter()
        await ext.on_load_document(LoadDocumentPayload("bench", "doc", loaded))
        load_seconds = time.perf_counter() - started
        assert str(loaded.get("text", type=Text)) == expected
        started = time.perf_counter()
        await fresh.compact("bench", "doc", loaded.get_update)
        compact_seconds = time.perf_counter() - started
        ext.unsaved()  # the replayed log is folded already; shutdown finds nothing to do
    snapshot = root / f"load-{updates}" / "bench" / "docs" / "doc.ydoc" / "snapshot.yjs"
    return {
        "updates": updates,
        "log_bytes": log_size,
        "load_seconds": load_seconds,
        "compaction_seconds": compact_seconds,
        "snapshot_bytes_after": snapshot.stat().st_size,
    }


def typing_position(edit: int, base: int) -> int:
    """Where edit number `edit` types: runs of 50 characters, each run somewhere else.

    Each character lands right after the previous one of its run, as when typing.
    """
    run, offset = divmod(edit, 50)
    return (run * 7919) % base + offset


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes = (1_000, 1_000_000)
    counts = (2_000, 10_000) if args.quick else (10_000, 100_000)
    seconds = 1.0 if args.quick else 3.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        amplification = [await write_amplification(root, size, seconds) for size in sizes]
        loads = [await load_and_compact(root, count) for count in counts]
    rows = [["document", "edits", "update B", "log B/edit", "snapshots", "B/edit", "B/window", "x"]]
    for r in amplification:
        rows.append(
            [
                f"{r['document_bytes'] // 1000} KB",
                str(r["edits"]),
                str(r["update_bytes"]),
                f"{r['log_bytes_per_edit']:.1f}",
                str(r["snapshots"]),
                f"{r['bytes_per_edit']:.0f}",
                f"{r['bytes_per_window']:.0f}",
                f"{r['amplification']:.1f}",
            ]
        )
    print("Write amplification (100 edits/s, debounce 0.25 s, max delay 1 s):")
    print(table(rows))
    rows = [["log updates", "log size", "load s", "compaction s", "snapshot after"]]
    for r in loads:
        rows.append(
            [
                f"{r['updates']:,}",
                f"{r['log_bytes'] / 1e6:.2f} MB",
                f"{r['load_seconds']:.3f}",
                f"{r['compaction_seconds']:.3f}",
                f"{r['snapshot_bytes_after'] / 1e3:.0f} KB",
            ]
        )
    print("\nLoad from 100 KB snapshot + log, then compaction:")
    print(table(rows))
    return {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "write_amplification": amplification,
        "load": loads,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    arguments = parser.parse_args()
    results = anyio.run(main, arguments)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
