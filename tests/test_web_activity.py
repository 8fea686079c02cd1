"""The web page's activity panel: an admin's page shows the room's activity log; others'
pages do not. Debian's Chromium through Playwright against `meshroom serve` (activity on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web import ROOM, SECRET, ServerProcess, chromium, open_page, serving, token

from meshroom.auth import Grant, mint_token

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(tmp_path / "rooms") as process:
        yield process


async def test_an_admin_page_shows_the_activity_log(server: ServerProcess) -> None:
    admin = mint_token(
        secret=SECRET, name="Ada", participant_id="ada", grants=[Grant(ROOM, ["*"], admin=True)]
    )
    async with chromium() as browser:
        ada = await open_page(browser, server, admin)
        bob = await open_page(browser, server, token("Bob", "bob"))
        await ada.wait_for_selector("#activity .activity-event[data-type='participant.joined']")
        await ada.wait_for_selector("#activity .activity-event:has-text('Bob')")
        assert "room.opened" in await ada.inner_text("#activity")
        await bob.close()
        await ada.wait_for_selector("#activity .activity-event[data-type='participant.left']")
        assert await ada.get_attribute("#activity", "data-error") is None
        page = await open_page(browser, server, token("Cy", "cy"))
        assert await page.is_hidden("#activity")  # no admin grant: no panel
        assert not ada.errors and not page.errors
