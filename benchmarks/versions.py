"""Versions benchmark: time and bytes for a version of a 1 MB and a 20 MB document.

Through the real `Versions` on `FsspecStorage` in a local folder (fsync on, as
`meshroom serve` uses it), with no server (the document's state is its stored snapshot):

- **save**: one named version of the document as it is: read the state, digest it, write
  state and metadata atomically. Bytes on disk per version.
- **list**: the document's versions (metadata only) once ten are saved.
- **read**: one version's state back, as a `MeshDocument`.
- **diff**: a version against the document after 1% of its paragraphs were rewritten
  (structural diff by `$id` and the Markdown diff).
- **restore**: the forward edit back to the version (computed and appended to the log),
  and its size.

The documents are paragraphs of 1 KB of text (1,000 and 20,000 of them).

    python benchmarks/versions.py              # both sizes; writes benchmarks/results/versions.json
    python benchmarks/versions.py --quick      # 1 MB only
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from meshdoc import MeshDocument
from meshroom.storage import FsspecStorage
from meshroom.versions import Versions

RESULTS = Path(__file__).resolve().parent / "results" / "versions.json"
PARAGRAPH = 1000


def build(paragraphs: int, rng: random.Random) -> MeshDocument:
    words = ["alpha", "beta", "gamma", "delta", "version", "restore", "agent", "meshroom"]
    document = MeshDocument(None)
    with document.transaction():
        for _ in range(paragraphs):
            text = ""
            while len(text) < PARAGRAPH:
                text += rng.choice(words) + " "
            document.root.append_child("paragraph").append_text(text[:PARAGRAPH])
    return document


async def measure(paragraphs: int, folder: Path) -> dict[str, Any]:
    rng = random.Random(paragraphs)
    storage = FsspecStorage(str(folder))
    versions = Versions(storage)
    document = build(paragraphs, rng)
    state = document.get_update()
    await storage.write_snapshot("bench", "doc", state)

    started = time.perf_counter()
    saved = await versions.save("bench", "doc", "v0")
    save_s = time.perf_counter() - started
    assert saved is not None
    on_disk = sum(
        path.stat().st_size
        for path in (folder / "bench" / "versions" / "doc.ydoc").iterdir()
        if path.name.startswith(saved.id)
    )
    for number in range(1, 10):
        await versions.save("bench", "doc", f"v{number}")
    started = time.perf_counter()
    listed = await versions.list("bench", "doc")
    list_s = time.perf_counter() - started
    assert len(listed) == 10

    started = time.perf_counter()
    copy = await versions.document("bench", "doc", saved.id)
    read_s = time.perf_counter() - started

    elements = copy.root.get_child_elements()
    for element in rng.sample(elements, max(1, paragraphs // 100)):
        text = element.text
        text.delete(0, 20)
        text.insert(0, "rewritten by someone ")
    await storage.write_snapshot("bench", "doc", copy.get_update())
    started = time.perf_counter()
    changes = await versions.diff("bench", "doc", saved.id)
    diff_s = time.perf_counter() - started
    assert changes.counts()["text"] == max(1, paragraphs // 100)

    started = time.perf_counter()
    restored = await versions.restore("bench", "doc", saved.id)
    restore_s = time.perf_counter() - started
    back = await versions.document("bench", "doc", "now")
    assert back.to_json() == document.to_json()
    return {
        "paragraphs": paragraphs,
        "document_bytes": len(state),
        "version_bytes_on_disk": on_disk,
        "save_ms": round(save_s * 1000, 1),
        "list_10_ms": round(list_s * 1000, 1),
        "read_ms": round(read_s * 1000, 1),
        "diff_ms": round(diff_s * 1000, 1),
        "diff_changes": len(changes.changes),
        "restore_ms": round(restore_s * 1000, 1),
        "restore_update_bytes": restored.update_bytes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 1 MB document only")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    args = parser.parse_args(argv)
    sizes = [1_000] if args.quick else [1_000, 20_000]
    rows = []
    for paragraphs in sizes:
        with tempfile.TemporaryDirectory() as folder:
            rows.append(anyio.run(measure, paragraphs, Path(folder)))
    header = (
        f"{'document':>10} {'on disk':>10} {'save':>9} {'list 10':>9} {'read':>9} "
        f"{'diff':>9} {'restore':>9} {'restore edit':>13}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['document_bytes'] / 1e6:>8.1f}MB {row['version_bytes_on_disk'] / 1e6:>8.1f}MB "
            f"{row['save_ms']:>7.1f}ms {row['list_10_ms']:>7.1f}ms {row['read_ms']:>7.1f}ms "
            f"{row['diff_ms']:>7.1f}ms {row['restore_ms']:>7.1f}ms "
            f"{row['restore_update_bytes'] / 1e3:>11.1f}KB"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "versions",
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
