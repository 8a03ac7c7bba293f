"""No package of the project has an import cycle, counting imports inside functions (a cycle
hidden in a function still ties two stages together), and ml_common imports no level."""

from __future__ import annotations

import ast

import pytest

from ml_common.paths import PROJECT_ROOT

PACKAGES = ("ml_common", "level1_notebooks", "level2_churn", "level3_recsys", "level4_fraud",
            "level5_discovery")  # fmt: skip


def module_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same project it imports, at any depth of its file."""
    modules = {}
    for path in (PROJECT_ROOT / package).rglob("*.py"):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m.split(".")[0] in PACKAGES} - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> list[str] | None:
        state[name] = 1
        for child in sorted(graph.get(name, ())):
            if child not in graph:
                continue
            if state.get(child) == 1:
                return [*stack, name, child]
            if child not in state and (cycle := visit(child, [*stack, name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            return cycle
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    graph = module_graph(package)
    assert len(graph) > 1
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_inside_a_function() -> None:
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_ml_common_imports_no_level() -> None:
    graph = module_graph("ml_common")
    assert not {m for deps in graph.values() for m in deps if m.startswith("level")}
