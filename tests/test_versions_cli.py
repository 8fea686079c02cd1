"""`meshroom serve` killed while it writes versions, and `meshroom version` against it.

Real processes: `meshroom serve --dev --storage DIR` as a subprocess, SIGKILLed at random
moments while a named version of a 4 MB document is being written; after each restart the
document has every edit a reader had received, every listed version reads back whole, and
a version whose save was answered is listed. Then the `meshroom version` commands, through
the server (`--url`) and straight on its storage (`--storage`).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import ROOT, free_port, serve_output, start_meshroom_serve

from meshdoc import MeshDocument
from meshroom import RoomClient
from meshroom.versions import Versions
from meshroom.versions._model import state_digest

pytestmark = pytest.mark.anyio

PATH = "notes/big"


def dev_token(port: int, *, admin: bool = False, name: str = "Ann") -> str:
    params = {"room": "team", "name": name, "admin": "1" if admin else ""}
    reply = httpx.get(f"http://127.0.0.1:{port}/dev/token", params=params, timeout=10)
    return str(reply.json()["token"])


def paragraphs(document: MeshDocument) -> list[str]:
    return [str(p.text) for p in document.root.get_child_elements()]


async def meshroom(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process([sys.executable, "-m", "meshroom", *args], cwd=ROOT, check=False)


def serve(port: int, folder: Path) -> subprocess.Popen[bytes]:
    return start_meshroom_serve(port, "--dev", "--storage", str(folder), "--grace-period", "0.2")


async def test_sigkill_while_a_version_is_written_loses_neither_it_nor_the_document(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "rooms"
    port = free_port()
    rng = random.Random(20)
    answered: list[str] = []
    rounds = 10
    for round_ in range(rounds):
        process = serve(port, folder)
        try:
            url = f"ws://127.0.0.1:{port}"
            async with (
                RoomClient(url, "team", token=dev_token(port, name="Writer")) as writer,
                RoomClient(url, "team", token=dev_token(port, name="Reader")) as reader,
            ):
                document = await writer.open(PATH)
                copy = await reader.open(PATH)
                with document.transaction():
                    if round_ == 0:  # a document of about 4 MB, one big paragraph
                        document.root.append_child("paragraph").append_text("x" * 4_000_000)
                    document.root.append_child("paragraph").append_text(f"round {round_}")
                # relayed to the reader: the server wrote it to its log first
                line = f"round {round_}"
                await reader.wait_for(lambda: line in paragraphs(copy)[-1:])  # noqa: B023
                admin = {"Authorization": f"Bearer {dev_token(port, admin=True)}"}
                delay = rng.uniform(0.0, 0.08)

                async def save(admin: dict[str, str] = admin, name: str = line) -> None:
                    async with httpx.AsyncClient(timeout=30) as http:
                        reply = await http.post(
                            f"http://127.0.0.1:{port}/rooms/team/versions",
                            params={"path": PATH},
                            headers=admin,
                            json={"name": name},
                        )
                    if reply.status_code == 201:
                        answered.append(reply.json()["id"])

                async with anyio.create_task_group() as group:
                    group.start_soon(save)
                    await anyio.sleep(delay)
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
                    group.cancel_scope.cancel()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    # nothing was lost: every round's edit, every answered version, every listed one whole
    from meshroom.storage import FsspecStorage

    versions = Versions(FsspecStorage(str(folder)))
    state = await versions.current_state("team", PATH)
    stored = MeshDocument.from_update(None, state)
    assert paragraphs(stored)[1:] == [f"round {n}" for n in range(rounds)]
    listed = await versions.list("team", PATH)
    for version in listed:
        _, saved = await versions.read("team", PATH, version.id)
        assert state_digest(saved) == version.digest and len(saved) == version.bytes
        number = int(version.name.split()[-1])
        assert paragraphs(MeshDocument.from_update(None, saved))[-1] == f"round {number}"
    assert set(answered) <= {version.id for version in listed}
    assert len(answered) < rounds, "some kills fell before a save was answered"


async def test_meshroom_version_commands_through_a_server_and_on_storage(tmp_path: Path) -> None:
    folder = tmp_path / "rooms"
    port = free_port()
    process = serve(port, folder)
    try:
        url = f"http://127.0.0.1:{port}"
        admin = dev_token(port, admin=True)
        async with RoomClient(f"ws://127.0.0.1:{port}", "team", token=dev_token(port)) as ann:
            document = await ann.open(PATH)
            with document.transaction():
                document.root.append_child("heading", {"level": 1}).append_text("Plan")
                document.root.append_child("paragraph").append_text("first")
            await anyio.sleep(0.3)
            via = ("--url", url, "--token", admin)
            saved = await meshroom("version", "save", "team", PATH, "--name", "draft", *via)
            assert saved.returncode == 0, saved.stderr
            version_id = saved.stdout.decode().strip()

            document.root.append_child("paragraph").append_text("second")
            await anyio.sleep(0.3)
            listed = await meshroom("version", "list", "team", PATH, "--json", *via)
            assert listed.returncode == 0, listed.stderr
            entries: list[dict[str, Any]] = [
                json.loads(line) for line in listed.stdout.splitlines()
            ]
            assert [entry["id"] for entry in entries] == [version_id]
            assert entries[0]["name"] == "draft"

            diff = await meshroom("version", "diff", "team", PATH, "draft", *via)
            out = diff.stdout.decode()
            assert diff.returncode == 0, diff.stderr
            assert "1 added" in out and "+second" in out

            shown = await meshroom("version", "show", "team", PATH, version_id[:15], *via)
            assert shown.stdout.decode() == "# Plan\n\nfirst\n"

            restored = await meshroom("version", "restore", "team", PATH, "draft", *via)
            assert restored.returncode == 0, restored.stderr
            assert restored.stdout.decode().startswith(f"restored {version_id}")
            await ann.wait_for(lambda: paragraphs(document) == ["Plan", "first"])

            # refused without an admin grant, and a version that does not exist
            plain = await meshroom(
                "version", "list", "team", PATH, "--url", url, "--token", dev_token(port)
            )
            assert plain.returncode == 3 and b"admin grant" in plain.stderr
            missing = await meshroom("version", "show", "team", PATH, "nope", *via)
            assert missing.returncode == 1 and b"no version 'nope'" in missing.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert "server stopped" in serve_output(process)

    # the server stopped: the same versions, straight from its storage
    on_storage = ("--storage", str(folder))
    listed = await meshroom("version", "list", "team", PATH, *on_storage)
    lines = listed.stdout.decode().splitlines()
    reasons = [line.split()[3] for line in lines]
    assert "named" in reasons and "before-restore" in reasons and "session-end" in reasons
    shown = await meshroom("version", "show", "team", PATH, "latest", *on_storage)
    assert shown.stdout.decode() == "# Plan\n\nfirst\n"
    both = await meshroom("version", "list", "team", PATH, *on_storage, "--url", "http://x")
    assert both.returncode == 2
