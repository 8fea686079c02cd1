"""A closed room's freed heap goes back to the system (`trim_heap`), at most once a second."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from meshroom.server import _heap

PROBE = textwrap.dedent(
    """
    import gc
    from meshroom.server._heap import trim_heap

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

    blocks = [bytes(1500) for _ in range(60_000)]  # ~90 MiB from malloc, not pymalloc
    held = blocks[::100]  # live blocks scattered through the heap keep it from shrinking
    del blocks
    gc.collect()
    before = rss_mib()
    assert trim_heap()
    print(before, rss_mib(), len(held))
    """
)


@pytest.mark.skipif(_heap._trim is None, reason="no glibc malloc_trim on this system")
def test_trimming_gives_freed_heap_back():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    before, after, _ = map(int, out.split())
    assert before - after > 40, f"RSS {before} MiB before the trim, {after} MiB after"


def test_trims_are_at_most_one_a_second(monkeypatch):
    calls = []
    monkeypatch.setattr(_heap, "_trim", calls.append)
    monkeypatch.setattr(_heap, "_last", -_heap.MIN_INTERVAL)
    assert _heap.trim_heap() is True
    assert _heap.trim_heap() is False  # a burst of room closes trims once
    assert calls == [0]
