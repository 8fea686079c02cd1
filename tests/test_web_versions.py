"""The page's versions panel in a real browser, for an admin.

`meshroom serve` as a subprocess (auth, folder storage, the built example), Debian's
Chromium through Playwright, and a Python `RoomClient`: the admin saves a version with
"Save version…", the Python peer edits, the panel's diff to now shows the edit, and
"Restore this version" brings the document back in the page and in the peer, live.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web import OUTPUT, PATH, ROOM, SECRET, ServerProcess, chromium, open_page, wait_until

from meshroom import RoomClient
from meshroom.auth import Grant, mint_token

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


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


def token(name: str, participant_id: str, *, admin: bool = False) -> str:
    return mint_token(
        secret=SECRET,
        name=name,
        participant_id=participant_id,
        grants=[Grant(ROOM, ["*"], admin=admin)],
    )


def paragraphs(document: Any) -> list[str]:
    return [str(p.text) for p in document.root.get_child_elements()]


async def test_save_compare_and_restore_from_the_versions_panel(served: ServerProcess) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        chromium() as browser,
        RoomClient(served.ws_url, ROOM, token=token("Py", "py")) as client,
    ):
        document = await client.open(PATH)
        document.root.append_child("paragraph").append_text("Reviewed line.")
        page = await open_page(browser, served, token("Ann", "ann", admin=True))
        await page.wait_for_function("!document.getElementById('versions').hidden")
        await page.wait_for_function(
            "document.querySelector('.ProseMirror').textContent.includes('Reviewed line.')"
        )

        async def answer(dialog: Any) -> None:
            await dialog.accept("reviewed" if dialog.type == "prompt" else None)

        page.on("dialog", answer)
        await page.click("#versions .version-save")
        await page.wait_for_function(
            "[...document.querySelectorAll('#versions .version-name')]"
            ".some((b) => b.textContent === 'reviewed')"
        )
        document.root.append_child("paragraph").append_text("Unreviewed line.")
        await page.wait_for_function(
            "document.querySelector('.ProseMirror').textContent.includes('Unreviewed line.')"
        )
        await page.click("#versions .version[data-reason='named'] .version-name")
        await page.wait_for_function(
            "document.querySelector('#versions .version-diff-lines')?.textContent"
            ".includes('+Unreviewed line.')"
        )
        title = await page.text_content("#versions .version-diff-title")
        assert "1 added" in title
        await page.screenshot(path=str(OUTPUT / "versions-panel.png"))
        await page.click("#versions .version-restore")
        await page.wait_for_function(
            "!document.querySelector('.ProseMirror').textContent.includes('Unreviewed line.')"
        )
        await client.wait_for(lambda: paragraphs(document) == ["Reviewed line."])

        async def listed_before_restore() -> bool:
            reasons = await page.evaluate(
                "[...document.querySelectorAll('#versions .version')].map((i) => i.dataset.reason)"
            )
            return "before-restore" in reasons

        await wait_until(listed_before_restore)
