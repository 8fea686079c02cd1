"""The documentation: the MkDocs site builds strictly, and the READMEs link only to files
that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "examples" / "web" / "README.md"]

# Inline Markdown links and images: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def relative_links(markdown: str) -> list[str]:
    """Targets of the relative links in `markdown`, code blocks left out."""
    text = FENCE.sub("", markdown)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http:, mailto:, … and anchors within the page
        targets.append(target)
    return targets


def test_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]'", pytrace=False)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed ({result.returncode})\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_readme_links_point_to_files_that_exist(readme: Path) -> None:
    links = relative_links(readme.read_text(encoding="utf-8"))
    assert links, f"{readme} has no relative links"
    missing = []
    for target in links:
        path = unquote(target.split("#", 1)[0])
        if path and not (readme.parent / path).exists():
            missing.append(target)
    assert not missing, f"{readme.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_does_not_point_outside_the_repository() -> None:
    """A user has the repository and nothing beside it: no path may climb out of it."""
    lines = [
        f"{number}: {line}"
        for number, line in enumerate(
            (ROOT / "README.md").read_text(encoding="utf-8").splitlines(), start=1
        )
        if "../" in line
    ]
    assert not lines, "README.md names paths outside the repository:\n" + "\n".join(lines)


def test_relative_links_are_found() -> None:
    markdown = (
        'See [a](docs/a.md#x), ![i](img.png "t"), [web](https://example.org), [top](#top).\n'
        "```sh\n[not](a-link.md)\n```\n"
    )
    assert relative_links(markdown) == ["docs/a.md#x", "img.png"]
