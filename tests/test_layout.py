"""Static layout checks on the library packages (jest/, baselines/, analysis/).

Every .py file is parsed with ``ast`` (nothing is imported), and its imports, at
any nesting level (a lazy import inside a function is still a dependency), are
resolved to modules of these packages.  Imports under ``if TYPE_CHECKING:`` are
ignored: they are never executed.

(a) there is no import cycle among these modules;
(b) no module is longer than MAX_LINES lines;
(c) nothing imports ``tools`` (developer tools live outside the import graph).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jest", "baselines", "analysis")
MAX_LINES = 420


# ---------------------------------------------------------------- module index

def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts)  # a package keeps its "__init__": pkg.__init__


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file; a package is named ``pkg.__init__``."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            out[_module_name(path, root)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name means: a module file, or a package's __init__."""
    if name in modules:
        return name
    if f"{name}.__init__" in modules:
        return f"{name}.__init__"
    return None


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom in the tree, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def _package_of(module: str) -> list[str]:
    """The package a module lives in, as name parts (for relative imports)."""
    parts = module.split(".")
    return parts[:-1]  # both pkg.mod and pkg.__init__ live in pkg


def imported_names(module: str, tree: ast.AST) -> list[tuple[str, int]]:
    """Dotted names a module imports (absolute, before resolution), with line numbers.

    ``from pkg import name`` yields both ``pkg`` and ``pkg.name`` (the latter
    resolves only when ``pkg.name`` is a submodule).
    """
    out = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, node.lineno))
            continue
        target = _from_base(module, node)
        out.append((target, node.lineno))
        for alias in node.names:
            if alias.name != "*":
                out.append((f"{target}.{alias.name}", node.lineno))
    return out


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> modules of these packages that it imports (directly).

    ``from pkg import name`` where ``pkg.name`` is a submodule counts as an
    import of that submodule only; an import of a package means its __init__.
    Importing ``a.b.c`` also runs ``a.__init__`` and ``a.b.__init__`` at run
    time; those implicit parent-package edges are not counted (a package's
    __init__ that re-exports its submodules would otherwise be a cycle with
    each of them): the graph is of the dependencies the code names.
    """
    modules = _modules() if modules is None else modules
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        deps = set()
        for node in _import_nodes(tree):
            for name in _targets(module, node, modules):
                if name != module:
                    deps.add(name)
        graph[module] = deps
    return graph


def _from_base(module: str, node: ast.ImportFrom) -> str:
    """The absolute dotted name a ``from X import ...`` statement names as X."""
    if not node.level:
        return node.module or ""
    base = _package_of(module)
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    prefix = ".".join(base)
    return f"{prefix}.{node.module}" if node.module else prefix


def _targets(module: str, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """Modules of these packages that one import statement imports."""
    if isinstance(node, ast.Import):
        found = (_resolve(a.name, modules) for a in node.names)
        return [m for m in found if m]
    target = _from_base(module, node)
    out = []
    names_package = False
    for alias in node.names:
        sub = None if alias.name == "*" else _resolve(f"{target}.{alias.name}", modules)
        if sub:  # ``from pkg import sub``: an import of the submodule
            out.append(sub)
        else:
            names_package = True
    if names_package:
        mod = _resolve(target, modules)
        if mod:
            out.append(mod)
    return out


# ---------------------------------------------------------------- cycle finder

def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles as chains [a, b, ..., a].

    Listing every elementary cycle can blow up, so this reports, for each
    strongly connected component, the shortest cycle through each of its edges
    (deduplicated by rotation): every edge that takes part in a cycle shows up
    in at least one reported chain.
    """
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for component in strongly_connected(graph):
        members = set(component)
        if len(component) == 1:
            node = component[0]
            if node not in graph.get(node, ()):
                continue
        for start in sorted(members):
            for first in sorted(graph.get(start, ()) & members):
                path = _shortest_path(graph, first, start, members)
                if path is None:
                    continue
                cycle = [start] + path
                key = _canonical(cycle[:-1])
                if key not in seen:
                    seen.add(key)
                    cycles.append(list(key) + [key[0]])
    return sorted(cycles, key=lambda c: (len(c), c))


def _canonical(ring: list[str]) -> tuple[str, ...]:
    i = ring.index(min(ring))
    return tuple(ring[i:] + ring[:i])


def _shortest_path(graph, source, target, members):
    """BFS path source -> ... -> target within members (inclusive of both)."""
    if source == target:
        return [target]
    previous = {source: None}
    queue = [source]
    for node in queue:
        for nxt in sorted(graph.get(node, ()) & members):
            if nxt in previous:
                continue
            previous[nxt] = node
            if nxt == target:
                path = [nxt]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    nodes = set(graph) | {d for deps in graph.values() for d in deps}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _pretty(module: str) -> str:
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


# ---------------------------------------------------------------- tests

def test_cycle_finder_detects_synthetic_cycles():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"e"},
        "f": {"g"},
        "g": {"f"},
        "h": {"a"},
    }
    cycles = find_cycles(graph)
    assert ["e", "e"] in cycles
    assert ["f", "g", "f"] in cycles
    assert ["a", "b", "c", "a"] in cycles
    assert len(cycles) == 3
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_graph_resolution_on_synthetic_tree(tmp_path):
    """``from pkg import sub`` is an import of the submodule; lazy imports count;
    TYPE_CHECKING imports do not; relative imports resolve."""
    pkg = tmp_path / "jest"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from jest import c\n"
        "def f():\n    from jest.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ..a import f\nfrom . import x\n")
    (pkg / "sub" / "x.py").write_text("import jest.sub\n")
    (pkg / "c.py").write_text("from jest import a\n")
    graph = import_graph(_modules(tmp_path))
    assert graph["jest.a"] == {"jest.sub.b"}
    assert graph["jest.sub.b"] == {"jest.a", "jest.sub.x"}
    assert graph["jest.sub.x"] == {"jest.sub.__init__"}
    assert graph["jest.c"] == {"jest.a"}
    assert find_cycles(graph) == [["jest.a", "jest.sub.b", "jest.a"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    chains = [" -> ".join(_pretty(m) for m in c) for c in cycles]
    assert not cycles, "import cycles among jest/, baselines/, analysis/:\n  " + "\n  ".join(chains)


def test_module_length():
    offenders = []
    for module, path in _modules().items():
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            offenders.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not offenders, f"modules over {MAX_LINES} lines:\n  " + "\n  ".join(sorted(offenders))


def _dynamic_imports(tree: ast.AST) -> list[tuple[str, int]]:
    """``importlib.import_module("x.y")`` / ``__import__("x.y")`` with a literal name."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        arg = node.args[0]
        if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append((arg.value, node.lineno))
    return out


def tools_imports(modules: dict[str, Path]) -> list[str]:
    """``file:line: name`` for every import of ``tools`` (or a submodule) by these modules."""
    offenders = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, line in imported_names(module, tree) + _dynamic_imports(tree):
            if name == "tools" or name.startswith("tools."):
                offenders.append(f"{module}:{line}: {name}")
    return sorted(set(offenders))


def test_tools_check_on_synthetic_tree(tmp_path):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "a.py").write_text(
        "def f():\n    from tools.bench import x\n    import importlib\n"
        "    importlib.import_module('tools.audit')\nimport toolsy\n")
    assert tools_imports(_modules(tmp_path)) == ["analysis.a:2: tools.bench", "analysis.a:2: tools.bench.x",
                                                 "analysis.a:4: tools.audit"]


def test_library_does_not_import_tools():
    offenders = tools_imports(_modules())
    assert not offenders, "library modules import tools:\n  " + "\n  ".join(offenders)
