"""The storage toolkit on a real `FsspecStorage`: list, read, write, convert to Markdown."""

from __future__ import annotations

import io
import uuid
import zipfile

import anyio
import pytest

from meshroom.agents import ErrorResponse, FileResponse, ToolContext
from meshroom.agents.toolkits import storage_toolkit
from meshroom.storage import FsspecStorage

pytestmark = pytest.mark.anyio

HTML = (
    b"<html><body><h1>Report</h1><p>Sales <b>grew</b> 4%.</p><ul><li>North</li></ul></body></html>"
)


def make_docx(paragraphs: list[str]) -> bytes:
    """The smallest Word file: content types, one relationship, one document part."""
    ns = "http://schemas.openxmlformats.org"
    body = "".join(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" for text in paragraphs)
    parts = {
        "[Content_Types].xml": f'<Types xmlns="{ns}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/'
        'officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": f'<w:document xmlns:w="{ns}/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def make_pdf(lines: list[str]) -> bytes:
    """The smallest PDF with text: one page, one Helvetica text stream, a correct xref."""
    stream = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream += " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


@pytest.fixture
def store():
    return FsspecStorage(f"memory://agents-{uuid.uuid4().hex}")


async def test_write_list_read(store):
    toolkit = storage_toolkit(store)
    context = ToolContext(room="team")
    written = await toolkit.execute(
        context, "write_file", {"name": "notes/summary.md", "text": "# Summary\n\nAll good."}
    )
    assert written.to_content() == "wrote notes/summary.md (20 bytes)"
    await store.write_file("team", "data/raw.bin", b"\x00\xff")
    await store.write_file("other", "secret.md", b"not yours")
    listed = await toolkit.execute(context, "list_files", {"prefix": None})
    assert listed.data == ["data/raw.bin", "notes/summary.md"]
    listed = await toolkit.execute(context, "list_files", {"prefix": "notes/"})
    assert listed.data == ["notes/summary.md"]
    text = await toolkit.execute(context, "read_file", {"name": "notes/summary.md"})
    assert isinstance(text, FileResponse) and text.to_content() == "# Summary\n\nAll good."
    binary = await toolkit.execute(context, "read_file", {"name": "data/raw.bin"})
    assert binary.to_content() == "[file data/raw.bin: application/octet-stream, 2 bytes]"
    missing = await toolkit.execute(context, "read_file", {"name": "nope.md"})
    assert isinstance(missing, ErrorResponse)
    escape = await toolkit.execute(context, "read_file", {"name": "../other/secret.md"})
    assert isinstance(escape, ErrorResponse)
    assert "not yours" not in escape.to_content()


async def test_convert_to_markdown(store):
    toolkit = storage_toolkit(store)
    context = ToolContext(room="team")
    await store.write_file("team", "report.html", HTML)
    await store.write_file("team", "table.csv", b"region,sales\nNorth,4\nSouth,7\n")
    markdown = await toolkit.execute(
        context, "file_to_markdown", {"name": "report.html", "save_as": "report.md"}
    )
    assert markdown.to_content().startswith("# Report\n\nSales **grew** 4%.")
    assert "North" in markdown.to_content()
    assert (await store.read_file("team", "report.md")).decode() == markdown.to_content()
    table = await toolkit.execute(
        context, "file_to_markdown", {"name": "table.csv", "save_as": None}
    )
    assert "| region | sales |" in table.to_content() and "| South | 7 |" in table.to_content()
    await store.write_file("team", "plan.docx", make_docx(["Quarterly plan", "Ship the beta."]))
    docx = await toolkit.execute(
        context, "file_to_markdown", {"name": "plan.docx", "save_as": None}
    )
    assert docx.to_content() == "Quarterly plan\n\nShip the beta."
    await store.write_file("team", "plan.pdf", make_pdf(["Quarterly plan", "Ship the beta."]))
    pdf = await toolkit.execute(context, "file_to_markdown", {"name": "plan.pdf", "save_as": None})
    assert pdf.to_content().split() == ["Quarterly", "plan", "Ship", "the", "beta."]
    await store.write_file("team", "broken.bin", bytes(range(256)))
    broken = await toolkit.execute(
        context, "file_to_markdown", {"name": "broken.bin", "save_as": None}
    )
    assert isinstance(broken, ErrorResponse) and "broken.bin" in broken.message
    assert "report.md" in await store.list_files("team")


async def test_import_file_into_a_document(live_server, store):
    from meshdoc.markdown import RICH_TEXT_SCHEMA, to_markdown
    from meshroom import RoomClient
    from meshroom.agents import AgentOrigin
    from meshroom.agents.toolkits import documents_toolkit

    async with (
        RoomClient(live_server.base_url, "team", name="Bot", kind="agent", id="bot") as bot,
        RoomClient(live_server.base_url, "team", name="Ann", id="ann") as ann,
    ):
        documents = documents_toolkit(RICH_TEXT_SCHEMA)
        toolkit = storage_toolkit(store, documents=documents)
        assert "import_file" in toolkit and "import_file" not in storage_toolkit(store)
        context = ToolContext(room="team", caller="bot", client=bot, origin=AgentOrigin("bot", "B"))
        await store.write_file("team", "report.html", HTML)
        result = await toolkit.execute(
            context, "import_file", {"name": "report.html", "document": "reports/q3"}
        )
        assert result.to_content() == "imported 3 block(s) into reports/q3", result
        document = await ann.open("reports/q3", RICH_TEXT_SCHEMA)
        with anyio.fail_after(5):
            await ann.wait_for(lambda: len(document.root.get_children()) == 3)
        assert to_markdown(document) == "# Report\n\nSales **grew** 4%.\n\n- North\n"
        # the import is the agent's edit: its undo removes it
        await documents.execute(context, "undo", {"path": "reports/q3", "steps": 1})
        with anyio.fail_after(5):
            await ann.wait_for(lambda: not document.root.get_children())
