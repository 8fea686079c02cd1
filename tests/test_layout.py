"""The layout holds: no import circles, and each part imports only the parts below it.

Reads every module's imports with `ast` (nothing is imported), counting imports inside
functions and under ``if TYPE_CHECKING:`` too: a circle hidden in a function or a type
annotation is still two modules that cannot be understood, or moved, one without the other.
The table of parts and what each may use is the one docs/architecture.md draws in words.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("meshdoc", "meshroom")

#: Each part, and the other parts of the project it may import (a part always uses itself).
#: A module belongs to the longest part name that prefixes its own.
ALLOWED: dict[str, set[str]] = {
    "meshdoc._exceptions": set(),
    "meshdoc._yxml": set(),
    "meshdoc.updates": {"meshdoc._exceptions"},
    "meshdoc.schema": {"meshdoc._exceptions", "meshdoc._yxml"},
    "meshdoc.text": {"meshdoc._exceptions", "meshdoc.updates"},
    "meshdoc.tree": {
        "meshdoc._exceptions",
        "meshdoc._yxml",
        "meshdoc.updates",
        "meshdoc.schema",
        "meshdoc.text",
    },
    "meshdoc.markdown": {"meshdoc._exceptions", "meshdoc.schema", "meshdoc.text", "meshdoc.tree"},
    "meshdoc.diff": {"meshdoc.tree", "meshdoc.markdown"},
    "meshdoc": {"meshdoc"},
    "meshroom._exceptions": set(),
    "meshroom._retry": set(),
    "meshroom.protocol": {"meshroom._exceptions", "meshdoc.updates"},
    "meshroom.server": {"meshroom._exceptions", "meshroom.protocol", "meshdoc"},
    "meshroom.transport": {"meshroom._exceptions", "meshroom.protocol", "meshroom.server"},
    "meshroom.client": {"meshroom._exceptions", "meshroom.protocol", "meshdoc"},
    "meshroom.auth": {"meshroom._exceptions", "meshroom.protocol", "meshroom.server"},
    "meshroom.storage": {"meshroom._exceptions", "meshroom.protocol", "meshroom.server"},
    "meshroom.cluster": {
        "meshroom._exceptions",
        "meshroom.protocol",
        "meshroom.server",
        "meshroom.storage",
    },
    "meshroom.activity": {"meshroom._exceptions", "meshroom.protocol", "meshroom.server"},
    "meshroom.metrics": {"meshroom._exceptions", "meshroom.server"},
    "meshroom.versions": {
        "meshroom._exceptions",
        "meshroom.protocol",
        "meshroom.server",
        "meshdoc",
    },
    "meshroom.agents": {
        "meshroom._exceptions",
        "meshroom.protocol",
        "meshroom.server",
        "meshroom.client",
        "meshroom.testing",  # only for the moved test doubles' one-release shim
        "meshdoc",
    },
    "meshroom.testing": {"meshroom._exceptions"},
    "meshroom.mcp": {
        "meshroom._exceptions",
        "meshroom.protocol",
        "meshroom.client",
        "meshroom.agents",
        "meshdoc",
    },
    "meshroom.cli": {"meshroom", "meshdoc"},
    "meshroom.__main__": {"meshroom.cli"},
    "meshroom": {"meshroom"},
}

#: What every part of meshroom may use: its errors and its one retry policy.
MESHROOM_BASE = {"meshroom._exceptions", "meshroom._retry"}

#: Distributions a part must never import, whatever imports it.
FORBIDDEN: dict[str, set[str]] = {
    "meshdoc": {"meshroom", "starlette", "uvicorn", "websockets", "fsspec", "redis", "openai"},
    "meshroom.protocol": {"starlette", "uvicorn", "websockets", "fsspec", "redis", "openai"},
    "meshroom.server": {
        "starlette",
        "uvicorn",
        "websockets",
        "fsspec",
        "redis",
        "openai",
        "prometheus_client",
    },
    "meshroom.client": {"starlette", "uvicorn", "fsspec", "redis", "openai"},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imports(name: str) -> Iterator[tuple[str, int]]:
    """Every module `name` imports (absolute names, not yet filtered), with its line."""
    path = MODULES[name][0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        yield from _imports_of_node(name, node)


def _imports_of_node(name: str, node: ast.AST) -> list[tuple[str, int]]:
    """What one statement of module `name` imports: the module first, then each name."""
    if isinstance(node, ast.Import):
        return [(alias.name, node.lineno) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = name.split(".") if MODULES[name][1] else name.split(".")[:-1]
    if node.level:
        anchor = base[: len(base) - node.level + 1]
        target = ".".join(anchor + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # `from . import x` imports the module x
    return [(target, node.lineno)] + [(f"{target}.{a.name}", node.lineno) for a in node.names]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        graph[name] = {t for t, _ in _imports(name) if t in MODULES and t != name}
    return graph


def _part(name: str) -> str:
    return max((p for p in ALLOWED if name == p or name.startswith(p + ".")), key=len)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


#: The packages whose modules form no circle.
CIRCLE_FREE = PACKAGES


def test_there_are_no_import_circles():
    graph = {n: e for n, e in _graph().items() if n.split(".")[0] in CIRCLE_FREE}
    circles = _circles(graph)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_part_imports_only_the_parts_it_may(package):
    wrong = []
    for name in sorted(MODULES):
        if name.split(".")[0] != package:
            continue
        part = _part(name)
        may = ALLOWED[part] | {part} | (MESHROOM_BASE if package == "meshroom" else set())
        for target, line in _imports(name):
            if target not in MODULES:
                continue
            target_part = _part(target)
            if target_part not in may and not any(target_part.startswith(m + ".") for m in may):
                wrong.append(f"{MODULES[name][0].relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "imports across the layout's lines:\n" + "\n".join(wrong)


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_never_imports_what_it_must_not(part):
    wrong = []
    for name in sorted(MODULES):
        if name != part and not name.startswith(part + "."):
            continue
        for target, line in _imports(name):
            top = target.split(".")[0]
            if top in FORBIDDEN[part]:
                wrong.append(f"{MODULES[name][0].relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, f"{part} must not import these:\n" + "\n".join(wrong)


#: The most lines a module has before it must say, at its top, why it stays whole.
MAX_LINES = 400


def test_a_module_over_400_lines_says_why_at_its_top():
    long = []
    for path, _ in sorted(MODULES.values()):
        lines = path.read_text().splitlines()
        docstring = ast.get_docstring(ast.parse("\n".join(lines))) or ""
        if len(lines) > MAX_LINES and f"Longer than {MAX_LINES} lines" not in docstring:
            long.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
    assert not long, "split these, or say why they stay whole:\n" + "\n".join(long)


def test_every_import_of_the_project_names_a_module_that_exists():
    """An import inside a function fails only when it runs: find it here instead."""
    missing = []
    for name in sorted(MODULES):
        path = MODULES[name][0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            (target, line), *_ = _imports_of_node(name, node)
            if target.split(".")[0] in PACKAGES and target not in MODULES:
                missing.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not missing, "\n".join(missing)
