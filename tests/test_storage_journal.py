"""A local write-ahead journal in front of S3 (moto in server mode): relayed means on disk.

With the store unreachable, edits are still relayed (they are in the local journal),
the server stops without losing them (they stay in the journal, and it says so), and
the next start uploads them before serving: the document read back holds every edit,
and the journal is empty again. A SIGKILL in the middle of the same loses nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pycrdt
import pytest
from conftest import eventually, free_port, run_server
from test_storage_extension import FlakyStorage
from test_storage_providers import s3_endpoint, s3_storage

from meshroom import RoomClient
from meshroom.storage import LocalJournal, StorageExtension

pytestmark = pytest.mark.anyio

__all__ = ["s3_endpoint"]  # the moto fixture

DOWN = 10**9


def text_of(doc: pycrdt.Doc) -> str:
    return str(doc.get("t", type=pycrdt.Text))


async def stored_text(storage) -> str:  # type: ignore[no-untyped-def]
    doc = pycrdt.Doc()
    snapshot = await storage.read_snapshot("team", "doc")
    for update in ([snapshot] if snapshot else []) + await storage.read_log("team", "doc"):
        doc.apply_update(update)
    return text_of(doc)


async def test_edits_relay_while_s3_is_down_and_reach_it_after_a_restart(
    s3_endpoint: str, tmp_path: Path
) -> None:
    s3 = s3_storage(s3_endpoint)
    flaky = FlakyStorage(s3)
    journal = LocalJournal(tmp_path / "journal")
    extension = StorageExtension(flaky, journal=journal, retry_initial=0.05, retry_max=0.1)
    async with (
        run_server(extensions=[extension]) as live,
        RoomClient(live.base_url, "team", name="Ann") as ann,
        RoomClient(live.base_url, "team", name="Bob") as bob,
    ):
        mine, theirs = await ann.open_ydoc("doc"), await bob.open_ydoc("doc")
        flaky.failures = DOWN
        mine.get("t", type=pycrdt.Text).insert(0, "while S3 is down")
        await eventually(lambda: text_of(theirs) == "while S3 is down")  # relayed at once
        await eventually(lambda: flaky.failed >= 2)  # uploads keep failing
    # The server stopped with S3 still down: the edit is in the journal only.
    assert await stored_text(s3) == ""
    assert [(r, p) for r, p, _ in await journal.pending()] == [("team", "doc")]

    flaky.failures = 0
    restarted = StorageExtension(s3, journal=LocalJournal(tmp_path / "journal"))
    async with (
        run_server(extensions=[restarted]) as live,
        RoomClient(live.base_url, "team", name="Cat") as cat,
    ):
        assert text_of(await cat.open_ydoc("doc")) == "while S3 is down"
    assert await stored_text(s3) == "while S3 is down"
    assert await LocalJournal(tmp_path / "journal").pending() == []


async def test_sigkill_with_a_journal_loses_no_relayed_edit(s3_endpoint: str, tmp_path: Path):
    """`meshroom serve --storage s3://… --journal DIR`, killed while a reader receives."""
    from test_crash import Editor, read_tokens, wait_until_up
    from websockets.asyncio.client import connect

    url = f"s3://meshroom-test/{tmp_path.name}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    relayed: set[str] = set()
    for trial in range(4):
        port = free_port()
        command = [sys.executable, "-m", "meshroom", "serve", "--port", str(port)]
        command += ["--storage", url, "--journal", str(tmp_path / "journal")]
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            await wait_until_up(process, port)
            stored = await read_tokens(port)
            assert relayed <= set(stored), f"trial {trial}: lost {relayed - set(stored)}"
            assert len(stored) == len(set(stored))
            target = f"ws://127.0.0.1:{port}/crash/doc"
            async with connect(target) as writing, connect(target) as reading:
                writer, reader = Editor(writing), Editor(reading)
                async with anyio.create_task_group() as group:
                    for peer in (writer, reader):
                        group.start_soon(peer.receive)
                        await peer.ws.send(pycrdt.create_sync_message(peer.doc))
                    with anyio.fail_after(15):
                        await writer.synced.wait()
                        await reader.synced.wait()
                    for index in range(20):
                        await writer.edit(f"t{trial}-{index}")
                        await anyio.sleep(0.01)
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    with anyio.fail_after(10):
                        while reading.state.name != "CLOSED":
                            await anyio.sleep(0.01)
                    group.cancel_scope.cancel()
            relayed |= set(reader.doc.get("tokens", type=pycrdt.Array).to_py() or [])
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert len(relayed) > 40


async def test_doc_export_and_import_on_s3_count_what_the_journal_holds(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`meshroom doc export/import --storage s3://…` after a server stopped with S3 down:
    the export shows the journaled edit, and an import replaces it for good (the next
    start uploads the journal, which must not bring the replaced content back)."""
    from test_cli_doc import meshroom, ok

    from meshdoc.markdown import to_markdown
    from meshroom.cli._doc_io import parse_content, replace_content

    s3 = s3_storage(s3_endpoint)
    flaky = FlakyStorage(s3)
    folder = tmp_path / "journal"
    extension = StorageExtension(
        flaky, journal=LocalJournal(folder), retry_initial=0.05, retry_max=0.1
    )
    async with (
        run_server(extensions=[extension]) as live,
        RoomClient(live.base_url, "team", name="Ann") as ann,
    ):
        flaky.failures = DOWN
        document = await ann.open("doc")
        replace_content(document, parse_content("# While S3 is down\n", "markdown", "test"))
        await eventually(lambda: flaky.failed >= 2)
    assert await stored_text(s3) == ""  # only in the journal
    flaky.failures = 0

    for name, value in (
        ("AWS_ENDPOINT_URL", s3_endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)  # what the `meshroom doc` subprocesses use
    where = ("team", "doc", "--storage", s3.url, "--journal", str(folder))
    assert ok(await meshroom("doc", "export", *where)) == "# While S3 is down\n"
    replacement = tmp_path / "replacement.md"
    replacement.write_text("# Replaced\n")
    ok(await meshroom("doc", "import", "team", "doc", str(replacement), *where[2:]))
    assert ok(await meshroom("doc", "export", *where)) == "# Replaced\n"

    restarted = StorageExtension(s3, journal=LocalJournal(folder))  # uploads the journal
    async with (
        run_server(extensions=[restarted]) as live,
        RoomClient(live.base_url, "team", name="Cat") as cat,
    ):
        assert to_markdown(await cat.open("doc")) == "# Replaced\n"
    assert await LocalJournal(folder).pending() == []
