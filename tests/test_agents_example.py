"""examples/agent_coedit.py runs on its own, offline, and shows both sides' edits merged."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_coedit.py"


async def test_agent_coedit_example_runs():
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, str(EXAMPLE)], check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    after = out.split("--- after (seen by Ann) ---")[1]
    assert "Launch the beta on Monday." in after
    assert "## Next steps" in after and "Risks: the payment provider's sandbox" in after
    notes = next(line for line in after.splitlines() if line.startswith("Ann's notes:"))
    assert len(notes.split()) > 3  # Ann's typing survived
    assert "schema problems: []" in out
    assert "agent → insert_elements(" in out
