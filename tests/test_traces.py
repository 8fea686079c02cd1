"""Real editing traces replayed through TextNode reach the recorded end text, and the trace
benchmark's command line keeps its interface."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "data" / "traces"


def load_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location(
        "trace_benchmark", ROOT / "benchmarks" / "traces.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_trace(name: str) -> dict[str, Any]:
    path = TRACES / f"{name}.json.gz"
    if not path.exists():
        pytest.fail(f"trace {path} is missing: the repository carries them in data/traces")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


# Two agents edit apart after "hello", then agent 0 merges both branches and ends the line.
FORKED = {
    "kind": "concurrent",
    "numAgents": 2,
    "endContent": "Hello world!",
    "txns": [
        {"parents": [], "agent": 0, "patches": [[0, 0, "hello"]]},
        {"parents": [0], "agent": 1, "patches": [[5, 0, " world"]]},
        {"parents": [0], "agent": 0, "patches": [[0, 1, "H"]]},
        {"parents": [1, 2], "agent": 0, "patches": [[11, 0, "!"]]},
    ],
}


@pytest.fixture(scope="module")
def bench() -> Any:
    return load_benchmark()


@pytest.mark.parametrize("name", ["sveltecomponent", "clownschool_flat"])
def test_sequential_trace_reaches_end_content(bench, name):
    trace = load_trace(name)
    _, text = bench.replay(trace, "meshdoc")
    assert text == trace["endContent"]


@pytest.mark.parametrize("name", ["clownschool.concurrent", None])
def test_concurrent_trace_converges_through_replicas(bench, name):
    trace = load_trace(name) if name else FORKED
    _, text = bench.replay(trace, "meshdoc")
    assert text == trace["endContent"]


def test_automerge_paper_prefix_matches_a_python_string(bench):
    trace = load_trace("automerge-paper")
    prefix = {"startContent": "", "txns": trace["txns"][:12_000]}
    expected = ""
    for txn in prefix["txns"]:
        for pos, deleted, inserted in txn["patches"]:
            expected = expected[:pos] + inserted + expected[pos + deleted :]
    _, text = bench.replay(prefix, "meshdoc")
    assert text == expected


@pytest.mark.parametrize("name", ["random-1k", "random-5k", "bursts-10k"])
def test_synthetic_traces_are_fixed_and_replay_to_their_end(bench, name):
    trace = bench.synthetic_trace(name)
    assert trace == bench.synthetic_trace(name)  # the same trace every run
    assert len(trace["txns"]) == bench.SYNTHETIC[name][0]
    assert all(len(txn["patches"]) == 1 for txn in trace["txns"])
    _, text = bench.replay(trace, "meshdoc")
    assert text == trace["endContent"] and len(text) > 1000


def test_replay_refuses_a_concurrent_trace_whose_agent_history_is_out_of_order(bench):
    trace = {
        "kind": "concurrent",
        "numAgents": 2,
        "endContent": "ab",
        "txns": [
            {"parents": [], "agent": 0, "patches": [[0, 0, "a"]]},
            {"parents": [], "agent": 0, "patches": [[0, 0, "b"]]},
        ],
    }
    with pytest.raises(ValueError, match="out of order"):
        bench.replay(trace, "meshdoc")


@pytest.mark.interop
def test_benchmark_command_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "rows.json"
    small = tmp_path / "tiny.json.gz"
    trace = load_trace("sveltecomponent")
    trace["txns"] = trace["txns"][:3000]
    expected = ""
    for txn in trace["txns"]:
        for pos, deleted, inserted in txn["patches"]:
            expected = expected[:pos] + inserted + expected[pos + deleted :]
    trace["endContent"] = expected
    with gzip.open(small, "wt", encoding="utf-8") as f:
        json.dump(trace, f)
    concurrent = tmp_path / "forked.json.gz"
    with gzip.open(concurrent, "wt", encoding="utf-8") as f:
        json.dump(FORKED, f)
    proc = subprocess.run(
        [sys.executable, "benchmarks/traces.py", str(small), str(concurrent), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [r["trace"] for r in rows] == ["tiny", "forked"]
    for row in rows:
        assert set(row) == {
            "trace",
            "ops",
            "txns",
            "meshdoc_s",
            "pycrdt_s",
            "yjs_s",
            "ratio",
            "meshdoc_us_per_edit",
            "yjs_us_per_edit",
        }
        assert all(isinstance(row[k], float) and row[k] >= 0 for k in ("meshdoc_s", "yjs_s"))
        assert row["meshdoc_us_per_edit"] == round(row["meshdoc_s"] / row["ops"] * 1e6, 2)
    assert rows[0]["ops"] == sum(len(t["patches"]) for t in trace["txns"])
    assert "meshdoc s" in proc.stdout and "forked" in proc.stdout


def test_benchmark_rejects_a_trace_that_misses_its_end(tmp_path):
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt", encoding="utf-8") as f:
        json.dump({"endContent": "nope", "txns": [{"patches": [[0, 0, "yes"]]}]}, f)
    proc = subprocess.run(
        [sys.executable, "benchmarks/traces.py", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "did not reach endContent" in proc.stderr
