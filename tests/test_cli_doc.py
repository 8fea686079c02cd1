"""`meshroom doc export|import` as subprocesses: through a live server and straight on storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from conftest import ROOT, free_port

from meshdoc.markdown import to_markdown
from meshroom import RoomClient

pytestmark = pytest.mark.anyio

PLAN = """# Plan

Ship **the beta** by *Friday*, see [the board](https://example.com/board).

- write the tests
- fix `the probe`

> Nothing ships untested.
"""


async def meshroom(*args: str) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-m", "meshroom", *args], check=False, cwd=ROOT, env=dict(os.environ)
        )


def error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The one stderr line of a failed command (fails the test on anything else)."""
    stderr = done.stderr.decode()
    assert done.returncode != 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def ok(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_storage_round_trip_markdown_and_json(tmp_path: Path) -> None:
    rooms = str(tmp_path / "rooms")
    source = tmp_path / "plan.md"
    source.write_text(PLAN)
    ok(await meshroom("doc", "import", "team", "notes/plan", str(source), "--storage", rooms))
    exported = ok(await meshroom("doc", "export", "team", "notes/plan", "--storage", rooms))
    assert exported == PLAN

    as_json = tmp_path / "plan.json"
    ok(
        await meshroom(
            "doc", "export", "team", "notes/plan", "--format", "json", "--storage", rooms,
            "--output", str(as_json),
        )
    )  # fmt: skip
    data = json.loads(as_json.read_text())
    tags = [next(iter(child)) for child in data["doc"]["children"]]
    assert tags == ["heading", "paragraph", "bulletList", "blockquote"]
    # a .json file is read as JSON without --format, with its $ids kept
    ok(await meshroom("doc", "import", "team", "notes/copy", str(as_json), "--storage", rooms))
    copy = ok(
        await meshroom("doc", "export", "team", "notes/copy", "-f", "json", "--storage", rooms)
    )
    assert json.loads(copy) == data
    assert ok(await meshroom("doc", "export", "team", "notes/copy", "--storage", rooms)) == PLAN


async def test_storage_import_replaces_the_whole_content(tmp_path: Path) -> None:
    rooms = str(tmp_path / "rooms")
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    first.write_text(PLAN)
    second.write_text("## Replaced\n\nOnly this.\n")
    for file in (first, second):
        ok(await meshroom("doc", "import", "team", "notes/plan", str(file), "--storage", rooms))
    assert ok(await meshroom("doc", "export", "team", "notes/plan", "--storage", rooms)) == (
        "## Replaced\n\nOnly this.\n"
    )


async def test_server_import_is_one_change_seen_live_and_export_reads_it(
    live_server, tmp_path: Path
) -> None:
    source = tmp_path / "plan.md"
    source.write_text(PLAN)
    async with RoomClient(live_server.base_url, "team", name="Ann") as ann:
        document = await ann.open("notes/plan")
        document.root.append_child("paragraph").text.insert(0, "Old text, to be replaced.")
        changes = []
        document.observe(changes.append)
        imported = await meshroom(
            "doc", "import", "team", "notes/plan", str(source), "--url", live_server.base_url
        )
        ok(imported)
        with anyio.fail_after(10):
            await ann.wait_for(lambda: to_markdown(document) == PLAN)
        assert len(changes) == 1  # deletes and inserts arrived as one transaction
        # (while Ann is there: this server keeps no storage, rooms close when empty)
        exported = await meshroom(
            "doc", "export", "team", "notes/plan", "--url", live_server.base_url
        )
        assert ok(exported) == PLAN


async def test_server_errors_are_one_line(live_server) -> None:
    missing = await meshroom("doc", "export", "team", "nowhere", "--url", live_server.base_url)
    assert missing.returncode == 1
    assert error_line(missing) == (
        f"meshroom doc export: room 'team' has no document 'nowhere' on {live_server.base_url} "
        "(nothing was ever written there)"
    )
    dead = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    unreachable = await meshroom(
        "doc", "export", "team", "notes/plan", "--url", dead, "--connect-timeout", "1"
    )
    assert time.monotonic() - started < 1 + 2
    assert unreachable.returncode == 3
    assert error_line(unreachable) == f"meshroom doc export: cannot connect to {dead} within 1 s"


async def test_storage_and_input_errors_are_one_line(tmp_path: Path) -> None:
    rooms = str(tmp_path / "rooms")
    source = tmp_path / "plan.md"
    source.write_text(PLAN)
    ok(await meshroom("doc", "import", "team", "notes/plan", str(source), "--storage", rooms))

    no_room = await meshroom("doc", "export", "other", "notes/plan", "--storage", rooms)
    assert no_room.returncode == 1
    assert error_line(no_room) == f"meshroom doc export: no room 'other' in {rooms}"
    no_doc = await meshroom("doc", "export", "team", "notes/missing", "--storage", rooms)
    assert no_doc.returncode == 1
    assert error_line(no_doc) == (
        f"meshroom doc export: room 'team' has no document 'notes/missing' in {rooms} "
        "(it has: notes/plan)"
    )

    broken = tmp_path / "broken.json"
    broken.write_text('{"doc": {"children": [')
    invalid = await meshroom("doc", "import", "team", "notes/plan", str(broken), "--storage", rooms)
    assert invalid.returncode == 2
    assert error_line(invalid).startswith(f"meshroom doc import: {broken} is not JSON: ")
    shapeless = tmp_path / "list.json"
    shapeless.write_text("[1, 2]")
    wrong = await meshroom(
        "doc", "import", "team", "notes/plan", str(shapeless), "--storage", rooms
    )
    assert wrong.returncode == 2
    assert f"{shapeless} is not a document's JSON" in error_line(wrong)
    # a refused import wrote nothing
    assert ok(await meshroom("doc", "export", "team", "notes/plan", "--storage", rooms)) == PLAN

    for args, expected in [
        (["export", "team", "notes/plan"], "give --url (a running server) or --storage"),
        (
            ["export", "team", "notes/plan", "--storage", rooms, "--url", "ws://127.0.0.1:1"],
            "one of them",
        ),
        (["export", "team", "../x", "--storage", rooms], "'..'"),
        (["export", "team", "notes/plan", "-f", "yaml", "--storage", rooms], "markdown or json"),
        (["export", "team", "notes/plan", "--storage", "foo://x"], "unknown protocol 'foo'"),
        (
            ["import", "team", "notes/plan", str(tmp_path / "none.md"), "--storage", rooms],
            "cannot read",
        ),
    ]:
        done = await meshroom("doc", *args)
        assert done.returncode == 2, (args, done.stderr)
        line = error_line(done)
        assert line.startswith(f"meshroom doc {args[0]}: ") and expected in line, line


async def test_help_says_import_replaces_in_one_transaction() -> None:
    text = " ".join(ok(await meshroom("doc", "import", "--help")).split())
    assert "replacing all its content in one transaction" in text
    assert "--storage" in text and "--url" in text
