"""Helpers of the MCP tests: `meshroom mcp` as the real subprocess an MCP client starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
from conftest import free_port
from mcp import StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]


def mcp_args(url: str, room: str, *extra: str, name: str = "Writer") -> list[str]:
    """`python -m meshroom mcp` arguments for `room` at `url` (the console script's CLI)."""
    return ["-m", "meshroom", "mcp", "--url", url, "--room", room, "--name", name, *extra]


def mcp_stdio(url: str, room: str, *extra: str, name: str = "Writer") -> StdioServerParameters:
    """What an MCP client launches to reach `room` over stdio."""
    return StdioServerParameters(
        command=sys.executable,
        args=mcp_args(url, room, *extra, name=name),
        cwd=str(ROOT),
        env=dict(os.environ),
    )


class McpHttp:
    """`meshroom mcp --http` as a subprocess; `url` is its MCP endpoint."""

    def __init__(self, url: str, room: str, *extra: str, name: str = "Writer") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        args = mcp_args(url, room, "--http", "--port", str(self.port), *extra, name=name)
        self.process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, stderr=subprocess.PIPE, env=dict(os.environ)
        )

    async def __aenter__(self) -> McpHttp:
        """Wait for it to answer HTTP (asynchronously: the room server runs in this loop)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode())  # type: ignore[union-attr]
            if await anyio.to_thread.run_sync(self._answers):
                return self
            await anyio.sleep(0.1)
        self.process.kill()
        raise RuntimeError("meshroom mcp --http did not start")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=0.5)
        except urllib.error.HTTPError:
            return True  # it answers (404 off the endpoint)
        except OSError:
            return False
        return True

    async def __aexit__(self, *exc_info: Any) -> None:
        self.process.terminate()
        await anyio.to_thread.run_sync(self.process.wait, 10)
        assert self.process.stderr is not None
        self.process.stderr.close()


def text_of(result: Any) -> str:
    """The text parts of an MCP tool result, joined."""
    return "\n".join(part.text for part in result.content if getattr(part, "text", None))
