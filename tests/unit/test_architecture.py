"""The architecture, checked: arrows between modules point one way, and the downloader's
functions stay short enough to read.

The import graph is read from the source (every ``import`` statement, including those
inside functions and ``if TYPE_CHECKING:`` blocks: a lazy import is still an arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "oec_async"
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (
        PACKAGE.parent / relative / "__init__.py"
    ).exists()


def imports_of(path: Path) -> set[str]:
    """The oec_async modules a module imports, anywhere in it."""
    tree = ast.parse(path.read_text())
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(candidate) else base)
    return {name for name in found if name == "oec_async" or name.startswith("oec_async.")}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        # A package's own __init__ importing its submodules (to re-export them) is the
        # package's surface, not an arrow between layers; the reverse would be a cycle.
        graph[name] = {m for m in imports_of(path) if m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_reader_finds_a_cycle_when_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_reader_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    graph = import_graph()
    assert "oec_async.download" in graph["oec_async._client"]
    assert "oec_async._client" in graph["oec_async"]  # a PEP 562 lazy import


def test_no_import_cycle_inside_the_package() -> None:
    """Every arrow one way: CLI -> client -> downloader -> disk; the simulator apart."""
    graph = import_graph()
    # The top-level package re-exports lazily; nothing inside may import it back.
    importers_of_root = sorted(m for m, deps in graph.items() if "oec_async" in deps)
    assert importers_of_root == [], importers_of_root
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_downloader_does_not_depend_on_the_client_or_the_command_line() -> None:
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("oec_async.download"):
            assert not {d for d in deps if d.startswith(("oec_async._client", "oec_async.cli"))}


def test_no_function_in_the_downloader_is_longer_than_a_screen() -> None:
    long = []
    for path in sorted((PACKAGE / "download").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({length} lines)")
    assert long == []
