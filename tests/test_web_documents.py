"""The page's document list in a real browser: the room document's `documents` map.

`meshroom serve` as a subprocess (auth, folder storage, the built example), Debian's
Chromium through Playwright, and a Python `RoomClient`: a document the client creates
appears in the page's list, clicking it opens it, and the "new document" box creates one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_web import (
    OUTPUT,
    PATH,
    ROOM,
    ServerProcess,
    chromium,
    open_page,
    token,
    wait_until,
)

from meshroom import RoomClient

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CREATED = "reports/weekly"
NEW = "ideas/board"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "rooms")
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def listed(page: Any) -> list[str]:
    return await page.evaluate(
        "() => [...document.querySelectorAll('#documents .document')].map((i) => i.dataset.path)"
    )


async def test_a_document_created_in_python_appears_and_opens(served: ServerProcess) -> None:
    server = served
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        page = await open_page(browser, server, token("Ann", "ann"))
        await wait_until(lambda: _has(page, PATH))  # the page's own document
        async with RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as client:
            document = await client.open(CREATED)
            document.root.append_child("paragraph").append_text("Sales are up.")
            await wait_until(lambda: _has(page, CREATED))
            details = await page.text_content(
                f'#documents [data-path="{CREATED}"] .document-details'
            )
            assert "1 open" in details
            await page.click(f'#documents [data-path="{CREATED}"] .document-link')
            await page.wait_for_function(
                f"window.meshroom && window.meshroom.me.path === {CREATED!r}"
                " && window.meshroom.provider.synced"
            )
            await page.wait_for_function(
                "document.querySelector('.ProseMirror').textContent.includes('Sales are up.')"
            )
            assert await page.text_content("#doc-path") == CREATED
            current = await page.get_attribute(f'#documents [data-path="{CREATED}"]', "class")
            assert "current" in current
            # The page has it open too: the Python client sees both.
            with anyio.fail_after(10):
                await client.wait_for(lambda: client.documents[CREATED]["open"] == ["ann", "py"])
            # "New document": opening a path creates it, and everyone's list shows it.
            await page.fill("#new-document-path", NEW)
            await page.click("#new-document-form button")
            await page.wait_for_function(
                f"window.meshroom && window.meshroom.me.path === {NEW!r}"
                " && window.meshroom.provider.synced"
            )
            with anyio.fail_after(10):
                await client.wait_for(lambda: client.documents.get(NEW, {}).get("open") == ["ann"])
            await wait_until(lambda: _has(page, NEW))
            await page.screenshot(path=str(OUTPUT / "documents.png"))
        assert page.errors == []


async def _has(page: Any, path: str) -> bool:
    return path in await listed(page)
