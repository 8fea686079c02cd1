"""The web example in a real browser: Debian's Chromium driven by Playwright.

Everything is real: `meshroom serve` as a subprocess (auth on, folder storage,
the example's built bundle served with `--static`), two browser pages running
the unmodified y-websocket provider and Tiptap, a Python `RoomClient`, and an
agent driven through the `openai` client by a scripted OpenAI-compatible server.
Screenshots of the final states are saved under `test-output/web/`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import pytest
from conftest import free_port, start_meshroom_serve

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import documents_toolkit
from meshroom.auth import Grant, mint_token
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "examples" / "web" / "dist"
OUTPUT = ROOT / "test-output" / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "web-example-test-secret-0123456789abcdef"
ROOM = "studio"
PATH = "notes/plan"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio


def token(name: str, participant_id: str, *, read_only: bool = False, kind: str = "person") -> str:
    return mint_token(
        secret=SECRET,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        participant_id=participant_id,
        grants=[Grant(ROOM, ["*"], read_only=read_only)],
    )


class ServerProcess:
    """`meshroom serve` as the README starts it, restartable on the same port and folder."""

    def __init__(self, storage: Path) -> None:
        self.port = free_port()
        self.storage = storage
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = start_meshroom_serve(
            self.port,
            *("--storage", str(self.storage), "--secret", SECRET, "--static", str(DIST)),
            *("--grace-period", "0.5", "--log-level", "warning"),
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None


@contextmanager
def serving(storage: Path) -> Iterator[ServerProcess]:
    """`meshroom serve` on a free port with its documents in `storage`, stopped after."""
    process = ServerProcess(storage)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(tmp_path / "rooms") as process:
        yield process


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def load_page(browser: Any, http_url: str, **query: str) -> Any:
    """A new page at `http_url/?room=…&doc=…&QUERY`, once its editor is on screen."""
    page = await browser.new_page(viewport={"width": 1280, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    await page.goto(f"{http_url}/?{urlencode({'room': ROOM, 'doc': PATH, **query})}")
    await page.wait_for_selector(".ProseMirror")
    return page


async def open_page(browser: Any, server: ServerProcess, page_token: str) -> Any:
    page = await load_page(browser, server.http_url, token=page_token)
    await page.wait_for_function("window.meshroom && window.meshroom.provider.synced")
    return page


async def page_json(page: Any) -> Any:
    return await page.evaluate("window.meshroom.editor.getJSON()")


async def page_text(page: Any) -> str:
    return await page.evaluate("window.meshroom.editor.getText()")


def without_empty_attrs(node: Any) -> Any:
    """ProseMirror JSON with attributes at their defaults dropped, so both sides compare."""
    if isinstance(node, list):
        return [without_empty_attrs(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "attrs":
            value = {k: v for k, v in value.items() if v is not None and k not in ("id", "$id")}
            if not value:
                continue
        result[key] = without_empty_attrs(value)
    return result


async def converged(pages: list[Any], client: RoomClient) -> bool:
    expected = without_empty_attrs(markdown.to_prosemirror(client.open_documents[PATH]))
    for page in pages:
        if without_empty_attrs(await page_json(page)) != expected:
            return False
    return True


async def wait_until(predicate: Any, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.1)


async def participant_kinds(page: Any) -> dict[str, str]:
    return await page.evaluate(
        """() => Object.fromEntries(
             [...document.querySelectorAll('#participants .participant')].map((item) =>
               [item.querySelector('.name').firstChild.textContent, item.dataset.kind]))"""
    )


async def test_two_pages_a_python_peer_and_an_agent_converge(server: ServerProcess) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        AsyncExitStack() as stack,
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        ann = await open_page(browser, server, token("Ann", "ann"))
        bob = await open_page(browser, server, token("Bob", "bob"))

        # Both pages type at once, into their own paragraphs, while Python appends one.
        await ann.click(".ProseMirror")
        await ann.keyboard.type("Ann writes the plan.")
        await ann.keyboard.press("Enter")
        await wait_until(lambda: _has_paragraphs(bob, 2))
        await bob.click(".ProseMirror p:last-child")
        await ann.click(".ProseMirror p:first-child")
        await ann.keyboard.press("End")
        async with anyio.create_task_group() as group:
            group.start_soon(ann.keyboard.type, " Ann keeps typing.")
            group.start_soon(bob.keyboard.type, "Bob adds his part.")
            markdown.insert_markdown(document.root, "Python was here too.")
        await wait_until(lambda: converged([ann, bob], python_peer))
        text = await page_text(ann)
        for piece in ("Ann writes the plan.", "Ann keeps typing.", "Bob adds his part.",
                      "Python was here too."):  # fmt: skip
            assert text.count(piece) == 1, (piece, text)

        # An agent joins, reads the outline, inserts a heading and rewrites Ann's sentence.
        def edit(request: Any) -> Any:
            outline = request.tool_results()[0]
            first = next(line for line in outline.splitlines() if "Ann writes" in line)
            element_id = first.split("]")[0].split("[")[-1]
            run = {"insert": "Launch plan", "marks": []}
            heading = {"heading": {"$id": None, "level": 1, "children": [{"$text": [run]}]}}
            return tool_calls(
                call(
                    "insert_elements",
                    path=PATH,
                    position="before",
                    target_id=element_id,
                    elements=[heading],
                ),
                call(
                    "replace_text",
                    path=PATH,
                    id=element_id,
                    find="writes the plan",
                    replace="wrote the launch plan",
                    occurrence=None,
                ),
            )

        script = [tool_calls(call("read_document", path=PATH, format="outline")), edit,
                  reply("Added a heading and tightened Ann's sentence.")]  # fmt: skip
        with ScriptedLLMServer(script) as llm_server:
            llm = OpenAILLM("scripted", base_url=llm_server.base_url, api_key="test")
            await stack.enter_async_context(llm)  # closes its HTTP pool on this event loop
            agent = Agent(
                "Editor",
                rules="You edit the team's plan.",
                toolkits=[documents_toolkit(markdown.RICH_TEXT_SCHEMA)],
                llm=llm,
                participant_id="editor-agent",
            )
            agent_token = token("Editor", "editor-agent", kind="agent")
            async with agent.connect(server.ws_url, ROOM, token=agent_token):
                await wait_until(lambda: _shows_agent(ann))
                # Ann asks the agent from the page's message box.
                await ann.select_option("#message-to", "editor-agent")
                await ann.fill("#message-text", "Please add a heading")
                await ann.click("#message-form button")
                for page in (ann, bob):
                    await page.wait_for_selector(".ProseMirror h1:has-text('Launch plan')")
                    await wait_until(lambda p=page: _text_contains(p, "Ann wrote the launch plan."))
                await wait_until(lambda: converged([ann, bob], python_peer))
                await wait_until(lambda: _has_message(ann, "tightened"))
                assert (await participant_kinds(bob))["Editor"] == "agent"
                assert (await participant_kinds(ann))["Bob"] == "person"
                await ann.screenshot(path=str(OUTPUT / "coedit-ann.png"))
                await bob.screenshot(path=str(OUTPUT / "coedit-bob.png"))
        assert document.root.get_children()[0].tag_name == "heading"
        assert not ann.errors and not bob.errors


async def _text_contains(page: Any, text: str) -> bool:
    return text in await page_text(page)


async def _has_paragraphs(page: Any, count: int) -> bool:
    return await page.evaluate("document.querySelectorAll('.ProseMirror p').length") >= count


async def _shows_agent(page: Any) -> bool:
    return "agent" in (await participant_kinds(page)).values()


async def _has_message(page: Any, text: str) -> bool:
    return text in await page.inner_text("#messages")


async def test_read_only_page_cannot_change_the_document(server: ServerProcess) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        markdown.insert_markdown(document.root, "Only writers change this.")
        reader = await open_page(browser, server, token("Reader", "reader", read_only=True))
        await reader.wait_for_selector(".ProseMirror p:has-text('Only writers change this.')")
        assert await reader.is_visible("#access")
        assert await reader.evaluate("window.meshroom.editor.isEditable") is False
        # Typing does nothing, and a write forced through the page's own Yjs doc is dropped
        # by the server: the Python peer never sees it.
        await reader.click(".ProseMirror")
        await reader.keyboard.type("sneaky")
        await reader.evaluate(
            """() => {
                 const { ydoc, Y } = window.meshroom
                 const paragraph = new Y.XmlElement('paragraph')
                 paragraph.insert(0, [new Y.XmlText('forced write')])
                 ydoc.getXmlFragment('default').insert(0, [paragraph])
               }"""
        )
        writer = await open_page(browser, server, token("Writer", "writer"))
        await writer.click(".ProseMirror p")
        await writer.keyboard.press("End")
        await writer.keyboard.type(" Confirmed.")
        with anyio.fail_after(10):
            await python_peer.wait_for(lambda: "Confirmed." in markdown.to_markdown(document))
        server_text = markdown.to_markdown(document)
        assert "sneaky" not in server_text and "forced write" not in server_text
        assert "sneaky" not in await page_text(writer)
        assert "forced write" not in await page_text(writer)
        await reader.screenshot(path=str(OUTPUT / "read-only.png"))


async def test_reload_and_server_restart_lose_nothing(server: ServerProcess) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        ann = await open_page(browser, server, token("Ann", "ann"))
        bob = await open_page(browser, server, token("Bob", "bob"))
        await ann.click(".ProseMirror")
        await ann.keyboard.type("Written before the reload.")
        await bob.wait_for_selector(".ProseMirror p:has-text('Written before the reload.')")

        await bob.reload()
        await bob.wait_for_selector(".ProseMirror p:has-text('Written before the reload.')")
        await wait_until(lambda: _participants_are(bob, {"Ann", "Bob"}))

        server.stop()  # SIGTERM: stores every document
        await ann.wait_for_selector("#status[data-state='disconnected']", timeout=15000)
        server.start()
        for page in (ann, bob):
            await page.wait_for_selector("#status[data-state='connected']", timeout=20000)
        await ann.click(".ProseMirror p")
        await ann.keyboard.press("End")
        await ann.keyboard.type(" And after the restart.")
        expected = "Written before the reload. And after the restart."
        await bob.wait_for_selector(f".ProseMirror p:has-text('{expected}')")
        await wait_until(lambda: _participants_are(bob, {"Ann", "Bob"}))
        async with RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer:
            document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
            assert markdown.to_markdown(document).strip() == expected
        await bob.screenshot(path=str(OUTPUT / "after-restart.png"))
        assert json.dumps(await page_json(ann)) == json.dumps(await page_json(bob))


async def _participants_are(page: Any, names: set[str]) -> bool:
    return set(await participant_kinds(page)) == names


@pytest.mark.parametrize(
    ("query", "code", "says"),
    [
        ({}, 4401, "not signed in: token required"),
        ({"token": "not-a-jwt"}, 4401, "not signed in"),
        ({"token": "other-room"}, 4403, "no access"),
    ],
    ids=["no-token", "bad-token", "other-room"],
)
async def test_a_refused_page_says_why(
    server: ServerProcess, query: dict[str, str], code: int, says: str
) -> None:
    if query.get("token") == "other-room":
        query = {"token": mint_token(secret=SECRET, name="Eve", grants=[Grant("elsewhere")])}
    async with chromium() as browser:
        page = await load_page(browser, server.http_url, **query)
        await page.wait_for_selector("#status[data-state='refused']", timeout=10000)
        status = await page.text_content("#status")
        assert status is not None and f"refused ({code})" in status and says in status
        assert await page_text(page) == ""


async def test_the_dev_server_of_the_run_command(tmp_path: Path) -> None:
    """README's run command: `--dev` hands the page a token; Python peers fetch one too."""
    import httpx

    port = free_port()
    process = start_meshroom_serve(
        port, "--dev", "--static", str(DIST), "--storage", str(tmp_path / "rooms")
    )
    try:
        async with chromium() as browser:
            page = await load_page(browser, f"http://127.0.0.1:{port}", name="Ann", id="ann")
            await page.wait_for_selector("#status[data-state='connected']", timeout=10000)
            assert await page.evaluate("window.meshroom.me.participantId") == "ann"
            reply = httpx.get(
                f"http://127.0.0.1:{port}/dev/token",
                params={"room": ROOM, "name": "Bob", "id": "bob"},
            )
            dev_token = reply.json()["token"]
            async with RoomClient(f"ws://127.0.0.1:{port}", ROOM, token=dev_token) as bob:
                assert bob.participant_id == "bob"
                with anyio.fail_after(10):
                    await bob.wait_for(lambda: "ann" in bob.participants)
                await bob.send_message("hello Ann", to="ann")
                await page.wait_for_selector("#messages :text('hello Ann')", timeout=10000)
    finally:
        process.terminate()
        process.wait(timeout=20)
