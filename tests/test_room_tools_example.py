"""examples/room_tools.py runs on its own, offline: delegation and a work queue, end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "room_tools.py"


async def test_room_tools_example_runs() -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, str(EXAMPLE)], check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "offered in the room: ['summariser/summaries']" in out
    assert 'Chat: Here is the summary: {"title":"Launch plan"' in out
    assert "queued: 3 items" in out
    translated = [line for line in out.splitlines() if line.startswith("translated:")]
    assert [line.rsplit("-> ", 1)[1] for line in translated] == [
        "'Bonjour'",
        "'Merci'",
        "'Au revoir'",
    ]
