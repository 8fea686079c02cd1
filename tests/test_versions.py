"""Versions: saved through real storage, served over real sockets, restored under typing.

A real server (uvicorn on a free port) with `FsspecStorage` in a real folder, real
`RoomClient`s and HTTP requests; agents driven by the scripted model server.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import ROOT, eventually, serve_app

from meshdoc import MeshDocument
from meshdoc.markdown import from_markdown, to_markdown
from meshroom import ChangePayload, Extension, RoomClient, Server, create_app
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import documents_toolkit, versions_toolkit
from meshroom.auth import Grant, JwtAuth, mint_token
from meshroom.storage import FsspecStorage, StorageExtension
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls
from meshroom.transport import uvicorn_websocket
from meshroom.versions import (
    RestoreOrigin,
    Retention,
    Version,
    VersionNotFound,
    Versions,
    VersionsExtension,
    VersionsUnsupported,
    version_routes,
)

pytestmark = pytest.mark.anyio

SECRET = "versions-test-secret-0123456789abcdef"
PATH = "notes/plan"


def token(
    participant: str, *, admin: bool = False, name: str | None = None, kind: str = "person"
) -> str:
    return mint_token(
        secret=SECRET,
        participant_id=participant,
        name=name or participant,
        kind=kind,
        expires_in=600,
        grants=[Grant("team", ["*"], admin=admin)],
    )


class Origins(Extension):
    """Records the origin of every change the server accepts."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def on_change(self, payload: ChangePayload) -> None:
        self.seen.append(payload.origin)


class Live:
    def __init__(
        self, server: Server, port: int, versions: VersionsExtension, origins: Origins
    ) -> None:
        self.server, self.port, self.extension = server, port, versions
        self.origins = origins.seen
        self.url = f"ws://127.0.0.1:{port}"
        self.http = f"http://127.0.0.1:{port}"

    @property
    def versions(self) -> Versions:
        return self.extension.versions


class serving:
    """A server with storage in `folder`, versions, JWT auth and the version routes."""

    def __init__(self, folder: Path, *, auth: bool = True, **options: Any) -> None:
        self.storage = FsspecStorage(str(folder))
        options.setdefault("interval", None)
        self.versions = VersionsExtension(self.storage, **options)
        self.origins = Origins()
        extensions: list[Any] = [
            StorageExtension(self.storage, debounce=0.05),
            self.versions,
            self.origins,
        ]
        if auth:
            extensions.append(JwtAuth(SECRET))
        self.server = Server(extensions=extensions, grace_period=0.1)
        self.app = create_app(
            self.server, extra_routes=version_routes(self.server, self.versions.versions)
        )

    async def __aenter__(self) -> Live:
        self._serve = serve_app(self.app, ws=uvicorn_websocket(self.server))
        port = await self._serve.__aenter__()
        return Live(self.server, port, self.versions, self.origins)

    async def __aexit__(self, *exc: object) -> None:
        await self._serve.__aexit__(*exc)


def paragraphs(document: MeshDocument) -> list[str]:
    return [str(p.text) for p in document.root.get_child_elements()]


def server_paragraphs(live: Live) -> list[str]:
    """The paragraphs of the server's live copy of the document."""
    room = live.server.room("team")
    if room is None or PATH not in room.documents:
        return []
    return paragraphs(MeshDocument.from_update(None, room.documents[PATH].doc.get_update()))


async def write_markdown(client: RoomClient, text: str) -> MeshDocument:
    document = await client.open(PATH)
    with document.transaction():
        for child in document.root.get_children():
            child.delete()
        from_markdown(text, document=document)
    return document


# -- storage ----------------------------------------------------------------------------------


async def test_versions_sit_beside_documents_and_outlive_compaction_and_deletion(
    tmp_path: Path,
) -> None:
    storage = FsspecStorage(str(tmp_path))
    versions = Versions(storage)
    async with StorageExtension(storage, debounce=0.01, max_delay=0.05) as extension:
        document = from_markdown("# Plan\n\nfirst\n")
        await storage.append_updates("team", PATH, [document.get_update()])
        saved = await versions.save("team", PATH, "first draft", author="ann")
        assert saved is not None and saved.name == "first draft" and not saved.automatic
        folder = tmp_path / "team" / "versions" / "notes" / "plan.ydoc"
        assert sorted(p.name for p in folder.iterdir()) == [f"{saved.id}.json", f"{saved.id}.yjs"]
        # the state is a plain Yjs update
        assert to_markdown(
            MeshDocument.from_update(None, (folder / f"{saved.id}.yjs").read_bytes())
        ) == ("# Plan\n\nfirst\n")
        # a compaction of the document (snapshot, log dropped) leaves versions alone
        await storage.compact("team", PATH, document.get_update())
        assert not list((tmp_path / "team" / "docs" / "notes" / "plan.ydoc" / "log").glob("*"))
        assert [v.id for v in await versions.list("team", PATH)] == [saved.id]
        del extension
    # a state file whose metadata a crash never wrote is not a version
    (folder / "20200101T000000000Z-aaaaaa.yjs").write_bytes(b"\x00\x00")
    assert [v.id for v in await versions.list("team", PATH)] == [saved.id]
    # documents never list versions, nor count their bytes
    assert await storage.list_documents("team") == [PATH]
    # deleting the document keeps its versions: it can be brought back
    await storage.delete("team", PATH)
    assert await storage.list_documents("team") == []
    restored = await versions.restore("team", PATH, "first draft")
    assert restored.version.id == saved.id
    assert to_markdown(await versions.document("team", PATH, "now")) == "# Plan\n\nfirst\n"
    with pytest.raises(VersionNotFound):
        await versions.get("team", PATH, "nothing like it")


async def test_a_provider_without_version_methods_says_which_it_lacks(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "sqlite_storage", ROOT / "examples" / "sqlite_storage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sqlite_storage"] = module
    spec.loader.exec_module(module)
    provider = module.SqliteStorage(str(tmp_path / "rooms.sqlite"))
    with pytest.raises(VersionsUnsupported) as raised:
        Versions(provider)
    message = str(raised.value)
    assert "SqliteStorage keeps no versions" in message
    for method in ("write_version", "read_version", "list_versions", "delete_version"):
        assert method in message
    with pytest.raises(VersionsUnsupported):
        VersionsExtension(provider)


async def test_retention_keeps_named_versions_and_thins_automatic_ones(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    retention = Retention(all_for=3600, hourly_for=86400, daily_for=10 * 86400)
    versions = Versions(storage, retention=retention)
    now = time.time() // 86400 * 86400 + 12.5 * 3600  # 12:30 UTC: buckets are clock hours, days
    state = MeshDocument(None).get_update()

    async def put(version_id: str, age: float, reason: str) -> None:
        version = Version(version_id, "team", PATH, version_id, now - age, reason)  # type: ignore[arg-type]
        await storage.write_version("team", PATH, version_id, version.encode(), state)

    await put("a-named-old", 40 * 86400, "named")  # named: kept whatever its age
    await put("b-auto-ancient", 20 * 86400, "interval")  # past daily_for: gone
    await put("c-auto-day5-early", 5 * 86400 + 600, "interval")  # same day as d: the older goes
    await put("d-auto-day5-late", 5 * 86400, "session-end")
    await put("e-auto-2h-a", 2 * 3600 + 1200, "interval")
    await put("f-auto-2h-b", 2 * 3600 + 60, "agent-run")  # same hour as e, newer: kept
    await put("g-auto-recent-1", 600, "interval")  # recent: all kept
    await put("h-auto-recent-2", 60, "interval")
    gone = await versions.prune("team", PATH, now=now)
    kept = [v.id for v in await versions.list("team", PATH)]
    assert "a-named-old" in kept and "g-auto-recent-1" in kept and "h-auto-recent-2" in kept
    assert "b-auto-ancient" not in kept
    assert ("c-auto-day5-early" in kept) != ("d-auto-day5-late" in kept)
    assert ("e-auto-2h-a" in kept) != ("f-auto-2h-b" in kept)
    assert len(gone) == 3 and len(kept) == 5
    assert Retention.parse("1,7,0").daily_for is None
    with pytest.raises(ValueError):
        Retention.parse("7,1,90")


# -- the server: automatic versions ---------------------------------------------------------------


async def test_a_session_end_saves_a_version_once_per_change(tmp_path: Path) -> None:
    async with serving(tmp_path, auth=False) as live:
        async with RoomClient(live.url, "team", name="Ann", id="ann") as ann:
            await write_markdown(ann, "# Plan\n\nhello\n")
        await eventually(lambda: "team" not in live.server.room_names())
        (first,) = await live.versions.list("team", PATH)
        assert first.reason == "session-end" and first.automatic and first.name == "end of session"
        assert (
            to_markdown(await live.versions.document("team", PATH, first.id)) == "# Plan\n\nhello\n"
        )
        # a session that changes nothing saves nothing
        async with RoomClient(live.url, "team", name="Ann", id="ann") as ann:
            await ann.open(PATH)
        await eventually(lambda: "team" not in live.server.room_names())
        assert [v.id for v in await live.versions.list("team", PATH)] == [first.id]


async def test_minutes_of_editing_save_interval_versions(tmp_path: Path) -> None:
    async with serving(tmp_path, auth=False, interval=0.3) as live:
        async with RoomClient(live.url, "team", name="Ann", id="ann") as ann:
            document = await write_markdown(ann, "# Plan\n\none\n")
            for word in ("two", "three", "four"):
                await anyio.sleep(0.15)
                document.root.append_child("paragraph").append_text(word)

            async def interval_versions() -> list[Version]:
                return [v for v in await live.versions.list("team", PATH) if v.reason == "interval"]

            with anyio.fail_after(10):
                while not await interval_versions():
                    await anyio.sleep(0.05)
            (first,) = (await interval_versions())[:1]
            assert first.name == "while editing"
        # quiet: no more interval versions come
        count = len(await interval_versions())
        await anyio.sleep(0.8)
        assert len(await interval_versions()) == count


async def test_a_connected_agent_run_is_undone_by_one_restore(tmp_path: Path) -> None:
    script = [
        tool_calls(call("read_document", path=PATH, format="markdown")),
        tool_calls(
            call(
                "insert_markdown",
                path=PATH,
                position="last_child",
                target_id=None,
                markdown="Agent line one.\n\nAgent line two.",
            )
        ),
        reply("Added two lines."),
    ]
    async with (
        serving(tmp_path) as live,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        RoomClient(live.url, "team", token=token("ann")) as ann,
    ):
        document = await write_markdown(ann, "# Plan\n\nAnn's line.\n")
        agent = Agent("Editor", toolkits=[documents_toolkit()], llm=llm)
        editor = token("editor", name="Editor", kind="agent")
        async with agent.connect(live.url, "team", token=editor):
            result = await agent.run(f"Add two lines to {PATH}")
            assert result.text == "Added two lines."
        await ann.wait_for(lambda: "Agent line two." in paragraphs(document))

        async def agent_versions() -> list[Version]:
            return [v for v in await live.versions.list("team", PATH) if v.reason == "agent-run"]

        with anyio.fail_after(10):
            while not await agent_versions():
                await anyio.sleep(0.05)
        (before_agent,) = await agent_versions()
        assert before_agent.detail == "editor" and before_agent.author == "editor"
        assert paragraphs(await live.versions.document("team", PATH, before_agent.id)) == [
            "Plan",
            "Ann's line.",
        ]
        restored = await live.versions.restore("team", PATH, before_agent.id, author="ann")
        await ann.wait_for(lambda: paragraphs(document) == ["Plan", "Ann's line."])
        # and the restore itself is undone by restoring what it saved first
        await live.versions.restore("team", PATH, restored.before.id, author="ann")
        await ann.wait_for(lambda: "Agent line two." in paragraphs(document))


async def test_an_embedded_agent_lists_diffs_and_restores_versions(tmp_path: Path) -> None:
    async with serving(tmp_path, auth=False) as live:
        async with RoomClient(live.url, "team", name="Ann", id="ann") as ann:
            document = await write_markdown(ann, "# Plan\n\nAnn's line.\n")
            await eventually(lambda: server_paragraphs(live) == ["Plan", "Ann's line."])
            named = await live.versions.save("team", PATH, "reviewed", author="ann")
            assert named is not None
            document.root.append_child("paragraph").append_text("Unreviewed line.")
            script = [
                tool_calls(call("list_versions", path=PATH)),
                tool_calls(call("diff_version", path=PATH, version="reviewed", to="now")),
                tool_calls(call("restore_version", path=PATH, version="reviewed")),
                reply("Restored the reviewed version."),
            ]
            events: list[Any] = []
            async with (
                ScriptedLLMServer(script) as llm_server,
                OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
            ):
                agent = Agent(
                    "Keeper",
                    toolkits=[documents_toolkit(), versions_toolkit()],
                    llm=llm,
                    on_event=events.append,
                )
                async with agent.embed(live.server, "team"):
                    # the server holds the unreviewed line before the agent starts
                    await eventually(lambda: "Unreviewed line." in server_paragraphs(live))
                    result = await agent.run(f"Put {PATH} back to the reviewed version")
            assert result.text == "Restored the reviewed version."
            results = [e for e in events if e.kind == "tool_result"]
            assert [e.name for e in results] == ["list_versions", "diff_version", "restore_version"]
            assert not any(e.error for e in results)
            await ann.wait_for(lambda: paragraphs(document) == ["Plan", "Ann's line."])
        reasons = [v.reason for v in await live.versions.list("team", PATH)]
        assert "named" in reasons and "before-restore" in reasons


# -- restore while people type --------------------------------------------------------------------


async def test_restore_while_two_clients_type_keeps_what_the_server_had_not_seen(
    tmp_path: Path,
) -> None:
    """The rule: a restore reverts exactly the state the server held when it began (saved
    first as the ``before-restore`` version); every edit the server receives after that
    moment is kept, merged on top. Every client converges on the same document."""
    async with (
        serving(tmp_path, auth=False) as live,
        RoomClient(live.url, "team", name="Ann", id="ann") as ann,
        RoomClient(live.url, "team", name="Bob", id="bob") as bob,
    ):
        if True:
            doc_a = await write_markdown(ann, "# Plan\n\nA:\n\nB:\n")
            doc_b = await bob.open(PATH)
            await bob.wait_for(lambda: paragraphs(doc_b) == ["Plan", "A:", "B:"])
            await eventually(lambda: server_paragraphs(live) == ["Plan", "A:", "B:"])
            version = await live.versions.save("team", PATH, "start")
            assert version is not None
            typed: dict[str, list[str]] = {"a": [], "b": []}
            stop = anyio.Event()

            async def type_into(document: MeshDocument, index: int, who: str) -> None:
                count = 0
                while not stop.is_set():
                    word = f" {who}{count}"
                    text = document.root.get_child_elements()[index].text
                    text.insert(len(str(text)), word)
                    typed[who].append(word.strip())
                    count += 1
                    await anyio.sleep(0.005)

            restored = None
            async with anyio.create_task_group() as group:
                group.start_soon(type_into, doc_a, 1, "a")
                group.start_soon(type_into, doc_b, 2, "b")
                await anyio.sleep(0.4)
                restored = await live.versions.restore("team", PATH, "start")
                await anyio.sleep(0.4)
                stop.set()
            assert restored is not None
            _, before_state = await live.versions.read("team", PATH, restored.before.id)
            before = MeshDocument.from_update(None, before_state)
            reverted = set(" ".join(paragraphs(before)[1:]).split())

            def words(document: MeshDocument) -> set[str]:
                return set(" ".join(paragraphs(document)[1:]).split()) - {"A:", "B:"}

            server_doc = live.server.room("team").documents[PATH].doc

            def server_state() -> bytes:
                return server_doc.get_update()

            # every client converges (same document everywhere, the server's too)
            await ann.wait_for(lambda: doc_a.to_json() == doc_b.to_json())
            await eventually(
                lambda: MeshDocument.from_update(None, server_state()).to_json() == doc_a.to_json()
            )
            everything = set(typed["a"]) | set(typed["b"])
            assert reverted, "the restore began after some typing"
            assert words(doc_a) == everything - reverted
            assert paragraphs(doc_a)[0] == "Plan"
            assert words(doc_a), "typing after the restore is kept"


# -- HTTP -------------------------------------------------------------------------------------


async def test_the_http_endpoints_answer_admins_only(tmp_path: Path) -> None:
    async with serving(tmp_path) as live:
        async with RoomClient(live.url, "team", token=token("ann")) as ann:
            document = await write_markdown(ann, "# Plan\n\nkeep me\n\ncut me\n")
            await eventually(lambda: server_paragraphs(live) == ["Plan", "keep me", "cut me"])
            base = f"{live.http}/rooms/team/versions"
            admin = {"Authorization": f"Bearer {token('ann', admin=True, name='Ann')}"}
            async with httpx.AsyncClient(timeout=30) as http:
                assert (await http.get(base, params={"path": PATH})).status_code == 401
                plain = {"Authorization": f"Bearer {token('ann')}"}
                assert (
                    await http.get(base, params={"path": PATH}, headers=plain)
                ).status_code == 403
                elsewhere = mint_token(
                    secret=SECRET,
                    participant_id="x",
                    expires_in=60,
                    grants=[Grant("other", admin=True)],
                )
                other = {"Authorization": f"Bearer {elsewhere}"}
                assert (
                    await http.get(base, params={"path": PATH}, headers=other)
                ).status_code == 403
                assert (await http.get(base, headers=admin)).status_code == 400

                saved = await http.post(
                    base, params={"path": PATH}, headers=admin, json={"name": "draft"}
                )
                assert saved.status_code == 201, saved.text
                version = saved.json()
                assert version["name"] == "draft" and version["author"] == "Ann"
                listed = (await http.get(base, params={"path": PATH}, headers=admin)).json()
                assert [v["id"] for v in listed["versions"]] == [version["id"]]

                cut = document.root.get_child_elements()[2]
                cut_id = cut.id
                cut.delete()
                document.root.get_child_elements()[0].set_attribute("level", 2)
                document.root.append_child("paragraph").append_text("added")
                await eventually(lambda: server_paragraphs(live) == ["Plan", "keep me", "added"])

                diff = (
                    await http.get(f"{base}/draft/diff", params={"path": PATH}, headers=admin)
                ).json()
                assert diff["counts"]["removed"] == 1 and diff["counts"]["added"] == 1
                assert diff["counts"]["attributes"] == 1
                assert "-cut me" in diff["markdown"] and "+added" in diff["markdown"]
                assert "-# Plan" in diff["markdown"] and "+## Plan" in diff["markdown"]

                shown = await http.get(
                    f"{base}/draft", params={"path": PATH, "format": "markdown"}, headers=admin
                )
                assert shown.text == "# Plan\n\nkeep me\n\ncut me\n"
                as_json = (
                    await http.get(f"{base}/draft", params={"path": PATH}, headers=admin)
                ).json()
                assert as_json["id"] == version["id"] and "doc" in as_json["document"]
                missing = await http.get(f"{base}/nope", params={"path": PATH}, headers=admin)
                assert missing.status_code == 404

                restored = await http.post(
                    f"{base}/draft/restore", params={"path": PATH}, headers=admin
                )
                assert restored.status_code == 200, restored.text
                body = restored.json()
                assert body["restored"]["id"] == version["id"]
                assert body["before"]["reason"] == "before-restore"
                await ann.wait_for(lambda: paragraphs(document) == ["Plan", "keep me", "cut me"])
                assert document.root.get_child_elements()[0].get_attribute("level") == 1
                # the client never reloaded: the same elements, the restore's origin named
                assert document.root.get_child_elements()[2].id == cut_id
        restores = [o for o in live.origins if isinstance(o, RestoreOrigin)]
        assert restores == [RestoreOrigin(version["id"], "Ann")]
