"""How `meshroom.agents` and `meshroom.testing` import: no circles, and the moved test doubles.

The circle check reads the source (every import counts: under `if TYPE_CHECKING:`,
inside functions), so a circle is caught even where Python would tolerate it at
run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import meshroom.agents
import meshroom.testing

ROOT = Path(__file__).resolve().parents[1]
MOVED = ["ScriptedLLMServer", "ScriptedRequest", "call", "fail", "reply", "tool_calls"]


def module_imports() -> dict[str, set[str]]:
    """Every meshroom module and the meshroom modules it imports, in any way."""
    files: dict[str, tuple[Path, bool]] = {}
    for path in (ROOT / "meshroom").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in files}
            elif isinstance(node, ast.ImportFrom):
                base = module.split(".") if is_package else module.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                for alias in node.names:
                    if f"{source}.{alias.name}" in files:
                        targets.add(f"{source}.{alias.name}")
                    elif source in files:
                        targets.add(source)
        graph[module] = targets - {module}
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo += graph.get(module, ())
    return False


def test_no_import_circles_in_agents_and_testing():
    graph = module_imports()
    ours = [
        module
        for module in graph
        if module.startswith(("meshroom.agents", "meshroom.testing", "meshroom._cli_agent"))
    ]
    assert "meshroom.testing._wire" in ours and "meshroom.agents._agent" in ours
    circles = sorted(module for module in ours if reaches(graph, module, module))
    assert circles == []


def test_testing_needs_nothing_from_agents_nor_the_agents_extra():
    graph = module_imports()
    testing = [module for module in graph if module.startswith("meshroom.testing")]
    assert not any(reaches(graph, module, "meshroom.agents") for module in testing)
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
