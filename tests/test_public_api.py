"""The public API: what `meshroom` and `meshdoc` export, and the names that moved."""

from __future__ import annotations

import warnings

import pytest

import meshdoc
import meshroom


@pytest.mark.parametrize("package", [meshroom, meshdoc])
def test_every_exported_name_exists(package):
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("connection_pair", "meshroom.server"),
        ("MemoryConnection", "meshroom.server"),
        ("Backoff", "meshroom.client"),
        ("uvicorn_websocket", "meshroom.transport"),
    ],
)
def test_a_moved_name_still_works_and_says_where_it_went(name, home):
    import importlib

    with pytest.warns(DeprecationWarning, match=home.replace(".", r"\.")):
        old = getattr(meshroom, name)
    assert old is getattr(importlib.import_module(home), name)


def test_an_unknown_name_is_an_attribute_error_not_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
            meshroom.nothing_here  # noqa: B018


def test_the_server_core_loads_none_of_its_adapters():
    import subprocess
    import sys

    adapters = ["starlette", "uvicorn", "fsspec", "redis", "openai"]
    code = (
        "import sys, meshroom.server, meshroom.protocol\n"
        f"print([m for m in {adapters!r} if m in sys.modules])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
