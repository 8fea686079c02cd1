"""How `meshroom.testing` imports, and the test doubles that moved there from `meshroom.agents`.

Import circles and what each part may import are checked for every module in
tests/test_layout.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import meshroom.agents
import meshroom.testing

ROOT = Path(__file__).resolve().parents[1]
MOVED = ["ScriptedLLMServer", "ScriptedRequest", "call", "fail", "reply", "tool_calls"]


def test_testing_needs_nothing_from_agents_nor_the_agents_extra():
    # that meshroom.testing imports no part but its own is in tests/test_layout.py's table
    code = "import sys; sys.modules['openai'] = None; import meshroom.testing; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("name", MOVED)
def test_moved_test_doubles_still_import_from_agents_with_a_warning(name):
    with pytest.warns(DeprecationWarning, match=rf"meshroom\.testing\.{name}\b"):
        value = getattr(meshroom.agents, name)
    assert value is getattr(meshroom.testing, name)
    assert name not in meshroom.agents.__all__
    assert name in meshroom.testing.__all__


def test_from_import_of_a_moved_name_warns_at_the_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec("from meshroom.agents import ScriptedLLMServer, Agent", {})
    assert caught and all(item.category is DeprecationWarning for item in caught)
    assert {item.filename for item in caught} == {"<string>"}  # the importing line


def test_current_names_do_not_warn_and_unknown_names_fail():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from meshroom.agents import Agent, OpenAILLM  # noqa: F401
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = meshroom.agents.no_such_name  # type: ignore[attr-defined]
