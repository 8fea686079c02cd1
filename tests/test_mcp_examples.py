"""The MCP examples run offline, as a person would run them, and Ann's typing survives."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from _mcp_helpers import ROOT


@pytest.mark.parametrize("example", ["mcp_openai_agents.py", "mcp_pydantic_ai.py"])
def test_the_example_runs_offline(example: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "agent: Done." in done.stdout
    typed = int(re.search(r"Ann typed (\d+) tokens", done.stdout).group(1))  # type: ignore[union-attr]
    first = next(line for line in done.stdout.splitlines() if line.startswith("We launch"))
    assert first == "We launch Monday. Ann's notes:" + "".join(f" {i}" for i in range(typed))
    assert "## Next steps\n\nShip on Monday." in done.stdout
