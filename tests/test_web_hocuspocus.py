"""The web example on either provider: a y-websocket page and a `?provider=hocuspocus` page.

Real `meshroom serve` (auth on, storage, the built bundle), Debian's Chromium through
Playwright: one page on y-websocket's WebsocketProvider, one on @hocuspocus/provider (its
document and room document multiplexed on one socket), and a Python `RoomClient` edit the
same document and see each other in the room; a read-only Hocuspocus page changes nothing.
"""

from __future__ import annotations

import anyio
import pytest
from test_web import (  # the browser harness of the y-websocket page tests
    OUTPUT,
    PATH,
    ROOM,
    ServerProcess,
    anyio_backend,
    chromium,
    load_page,
    participant_kinds,
    server,
    token,
)

from meshdoc import markdown
from meshroom import RoomClient

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

__all__ = ["anyio_backend", "server"]  # fixtures, used by name


async def open_page(browser, server: ServerProcess, page_token: str, **query: str):
    page = await load_page(browser, server.http_url, token=page_token, **query)
    await page.wait_for_function("window.meshroom && window.meshroom.provider.synced")
    return page


async def test_a_y_websocket_page_and_a_hocuspocus_page_edit_one_document(
    server: ServerProcess,
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        markdown.insert_markdown(document.root, "From Python.")
        ann = await open_page(browser, server, token("Ann", "ann"))
        bob = await open_page(browser, server, token("Bob", "bob"), provider="hocuspocus")
        kind = await bob.evaluate("window.meshroom.provider.constructor.name")
        assert kind != "WebsocketProvider"
        await bob.wait_for_selector(".ProseMirror p:has-text('From Python.')")
        await ann.click(".ProseMirror p")
        await ann.keyboard.press("End")
        await ann.keyboard.type(" Ann was here.")
        await bob.click(".ProseMirror p")
        await bob.keyboard.press("End")
        await bob.keyboard.type(" Bob too.")
        with anyio.fail_after(15):
            await python_peer.wait_for(
                lambda: (
                    "Ann was here." in markdown.to_markdown(document)
                    and "Bob too." in markdown.to_markdown(document)
                )
            )
        expected = markdown.to_markdown(document).strip()
        for page in (ann, bob):
            with anyio.fail_after(15):
                while (await page.evaluate("window.meshroom.editor.getText()")).strip() != expected:
                    await anyio.sleep(0.1)
        # Presence is the room's: each page lists the other, whatever its provider.
        with anyio.fail_after(15):
            while not {"Ann", "Bob", "Py"} <= set(await participant_kinds(bob)):
                await anyio.sleep(0.1)
        with anyio.fail_after(15):
            while "Bob" not in await participant_kinds(ann):
                await anyio.sleep(0.1)
        assert not ann.errors and not bob.errors
        await bob.screenshot(path=str(OUTPUT / "hocuspocus.png"))


async def test_a_read_only_hocuspocus_page_changes_nothing(server: ServerProcess) -> None:
    async with (
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        markdown.insert_markdown(document.root, "Only writers change this.")
        reader = await open_page(
            browser, server, token("Reader", "reader", read_only=True), provider="hocuspocus"
        )
        await reader.wait_for_selector(".ProseMirror p:has-text('Only writers change this.')")
        assert await reader.evaluate("window.meshroom.editor.isEditable") is False
        await reader.evaluate(
            """() => {
                 const { ydoc, Y } = window.meshroom
                 const paragraph = new Y.XmlElement('paragraph')
                 paragraph.insert(0, [new Y.XmlText('forced write')])
                 ydoc.getXmlFragment('default').insert(0, [paragraph])
               }"""
        )
        markdown.insert_markdown(document.root, "Writers still do.")
        await reader.wait_for_selector(".ProseMirror p:has-text('Writers still do.')")
        assert "forced write" not in markdown.to_markdown(document)
        assert await reader.evaluate("window.meshroom.provider.provider.authorizedScope") == (
            "readonly"
        )
