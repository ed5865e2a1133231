"""The layer map of docs/architecture.md, enforced from every import statement in the source.

Every ``import``/``from … import`` (module level and inside functions) of every module of the
package is parsed (no module is imported), resolved to the project module it names, and the
graph is checked:

- no import cycles (strongly connected components of more than one module), and no module
  importing a package that contains it (its ``__init__`` runs first: a cycle in disguise);
- no edge from a lower layer to a higher one (the table below);
- no import of another module's private (``_``-prefixed) names, and no import of a private
  module from outside the package that holds it;
- function-level imports only of optional or slow dependencies (torch, matplotlib, SymPy and
  the symbolic layer, jax, keras, …) — never of the project's own light modules.

Deprecated aliases (shims kept one release for names the README once documented) are listed in
:data:`DEPRECATED_ALIASES` with the release that removes them; their edges are exempt.

``python tests/test_layers.py`` prints the counts.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> package name (pyproject.toml's package-dir)
FOLDERS = {"bpttcheck": "bpttcheck", "reference": "bpttcheck.reference", "properties": "bpttcheck.properties",
           "symbolic": "bpttcheck.symbolic"}

#: layer -> rank; a module may import modules of its own rank or lower.
RANKS = {"base": 0, "reference": 1, "symbolic": 2, "properties": 3, "oracle": 4, "app": 5}

#: optional or slow dependencies: the only ones a function may import (third-party or project)
OPTIONAL = ("torch", "matplotlib", "sympy", "mpmath", "jax", "jaxlib", "flax", "equinox", "haiku", "keras",
            "tensorflow", "optax", "scipy", "pytest", "xdist", "jsonschema", "bpttcheck.symbolic")

#: module -> (the release that removes it, what replaces it). Their import edges are exempt.
DEPRECATED_ALIASES: dict[str, tuple[str, str]] = {
    "bpttcheck.properties.bench_api": ("0.3", "bpttcheck.bench.core"),
    "bpttcheck.properties.diagnose": ("0.3", "bpttcheck.commands.diagnose"),
    "bpttcheck.symbolic.bench": ("0.3", "bpttcheck.bench.symbolic"),
    "bpttcheck.symbolic.checks": ("0.3", "bpttcheck.properties.symbolic_checks"),
    "bpttcheck.symbolic.derive_cli": ("0.3", "bpttcheck.commands.derive"),
}

#: Deliberately lazy imports of the project's own heavy modules: (importer, imported) -> why.
LAZY = {
    ("bpttcheck.plugin", "bpttcheck.plugin_items"): "a pytest run without a target imports neither the oracle "
                                                    "nor numpy through the plugin",
}

#: Known violations that their owners are removing (issue 11), "rule source -> target": owner.
#: Each must still occur — when one is fixed, delete its line (test_pending_entries_still_occur).
PENDING: dict[str, str] = {
    "function-level bpttcheck.symbolic.bounds -> bpttcheck.reference.activations": "sym",
    "function-level bpttcheck.symbolic.bounds -> bpttcheck.reference.config": "sym",
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("_version", "options", "profiles"):
        return "base"
    if parts[1] in ("reference", "symbolic"):
        return parts[1]
    if parts[1] == "properties":
        return "oracle" if len(parts) > 2 and parts[2] == "oracle" else "properties"
    return "app"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str  # a project module, or a third-party top-level name
    names: tuple[str, ...]  # the names imported from it (``from x import a, b``), or ()
    function_level: bool
    line: int

    @property
    def internal(self) -> bool:
        return self.target == "bpttcheck" or self.target.startswith("bpttcheck.")

    def __str__(self):
        where = "function-level" if self.function_level else "module-level"
        return f"{self.source}:{self.line} -> {self.target}{' (' + ', '.join(self.names) + ')' if self.names else ''} [{where}]"


def modules() -> dict[str, Path]:
    """Every module of the package -> its file."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join((package,) + rel)] = path
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return name in files and files[name].name == "__init__.py"


def _resolve_relative(source: str, level: int, module: str | None, files) -> str:
    base = source if _is_package(source, files) else source.rsplit(".", 1)[0]
    for _ in range(level - 1):
        base = base.rsplit(".", 1)[0]
    return f"{base}.{module}" if module else base


class _Visitor(ast.NodeVisitor):
    def __init__(self, source, files):
        self.source, self.files, self.depth, self.edges = source, files, 0, []

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _add(self, target, names, node):
        self.edges.append(Edge(self.source, target, tuple(names), self.depth > 0, node.lineno))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, (), node)

    def visit_ImportFrom(self, node):
        base = _resolve_relative(self.source, node.level, node.module, self.files) if node.level else node.module
        plain = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in self.files:  # `from pkg import submodule`: an edge to the submodule
                self._add(sub, (), node)
            else:
                plain.append(alias.name)
        if plain or not node.names:
            self._add(base, plain, node)


def edges(files: dict[str, Path] | None = None) -> list[Edge]:
    files = files or modules()
    out = []
    for name, path in files.items():
        visitor = _Visitor(name, files)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        out.extend(visitor.edges)
    return out


def _project_target(edge: Edge, files) -> str | None:
    """The project module an edge lands on (the longest known prefix), or None if third-party."""
    if not edge.internal:
        return None
    name = edge.target
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def graph(all_edges, files) -> dict[str, set[str]]:
    g = {m: set() for m in files}
    for e in all_edges:
        t = _project_target(e, files)
        if t is not None and t != e.source:
            g[e.source].add(t)
    return g


def cycles(all_edges=None, files=None) -> list[list[str]]:
    """Strongly connected components of more than one module, then every module that imports a
    package containing it (``[module, package]``)."""
    files = files or modules()
    all_edges = edges(files) if all_edges is None else all_edges
    g = graph([e for e in all_edges if e.source not in DEPRECATED_ALIASES], files)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(g):
        if v not in index:
            strong(v)
    for v in sorted(g):
        for w in sorted(g[v]):
            if v.startswith(w + ".") and _is_package(w, files):
                out.append([v, w])
    return out


def upward_edges(all_edges=None, files=None) -> list[Edge]:
    files = files or modules()
    all_edges = edges(files) if all_edges is None else all_edges
    out = []
    for e in all_edges:
        t = _project_target(e, files)
        if t is None or e.source in DEPRECATED_ALIASES:
            continue
        if RANKS[layer_of(t)] > RANKS[layer_of(e.source)]:
            out.append(e)
    return out


def _within(importer: str, module: str) -> bool:
    package = module.rpartition(".")[0]
    return importer == package or importer.startswith(package + ".")


def private_imports(all_edges=None, files=None) -> list[Edge]:
    """Imports of another module's ``_name`` (dunders excepted), or of a ``_module`` from outside
    the package that holds it."""
    files = files or modules()
    all_edges = edges(files) if all_edges is None else all_edges
    out = []
    for e in all_edges:
        if not e.internal or e.source in DEPRECATED_ALIASES:
            continue
        private_names = [n for n in e.names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
        parts = e.target.split(".")
        private_module = next((".".join(parts[:i + 1]) for i, p in enumerate(parts)
                               if p.startswith("_") and not p.startswith("__")), None)
        if private_names or (private_module and not _within(e.source, private_module)):
            out.append(e)
    return out


def _optional(target: str) -> bool:
    return any(target == o or target.startswith(o + ".") for o in OPTIONAL)


def function_level_project_imports(all_edges=None, files=None) -> list[Edge]:
    """Function-level imports of the project's own modules other than optional/slow ones (and
    the deliberate :data:`LAZY` ones)."""
    files = files or modules()
    all_edges = edges(files) if all_edges is None else all_edges
    return [e for e in all_edges if e.function_level and e.internal and not _optional(e.target)
            and e.source not in DEPRECATED_ALIASES and (e.source, _project_target(e, files)) not in LAZY]


def _key(rule: str, source: str, target: str) -> str:
    return f"{rule} {source} -> {target}"


def _pending(rule: str, source: str, target: str) -> bool:
    return _key(rule, source, target) in PENDING or _key(rule, "*", target) in PENDING


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def parsed():
    files = modules()
    return files, edges(files)


def test_the_parser_sees_every_kind_of_import():
    """The analysis itself: relative imports, `from pkg import submodule`, function level, and
    each rule on a made-up graph."""
    files = {"bpttcheck": Path("bpttcheck/__init__.py"), "bpttcheck.a": Path("a.py"),
             "bpttcheck.pkg": Path("pkg/__init__.py"), "bpttcheck.pkg.b": Path("pkg/b.py"),
             "bpttcheck.reference._v": Path("reference/_v.py"), "bpttcheck.reference": Path("reference/__init__.py")}
    source = ("from .pkg import b\nfrom . import a as _a\nfrom .a import _hidden\nfrom .reference import _v\n"
              "def f():\n    import torch\n    from bpttcheck import pkg\n    from . import a\n")
    visitor = _Visitor("bpttcheck.c", files)
    visitor.visit(ast.parse(source))
    got = [(e.target, e.names, e.function_level) for e in visitor.edges]
    assert got == [("bpttcheck.pkg.b", (), False), ("bpttcheck.a", (), False), ("bpttcheck.a", ("_hidden",), False),
                   ("bpttcheck.reference._v", (), False), ("torch", (), True), ("bpttcheck.pkg", (), True),
                   ("bpttcheck.a", (), True)]
    files["bpttcheck.c"] = Path("c.py")
    assert [str(e).split(" [")[0] for e in private_imports(visitor.edges, files)] == [
        "bpttcheck.c:3 -> bpttcheck.a (_hidden)", "bpttcheck.c:4 -> bpttcheck.reference._v"]
    assert [e.target for e in function_level_project_imports(visitor.edges, files)] == ["bpttcheck.pkg", "bpttcheck.a"]
    loop = [Edge("bpttcheck.a", "bpttcheck.pkg.b", (), False, 1), Edge("bpttcheck.pkg.b", "bpttcheck.a", (), True, 1),
            Edge("bpttcheck.pkg.b", "bpttcheck.pkg", ("x",), False, 2)]
    assert cycles(loop, files) == [["bpttcheck.a", "bpttcheck.pkg.b"], ["bpttcheck.pkg.b", "bpttcheck.pkg"]]
    up = [Edge("bpttcheck.reference._v", "bpttcheck.a", (), False, 1)]
    assert upward_edges(up, files) == up  # reference -> app


def _violations(files, all_edges) -> dict[str, list[str]]:
    """rule -> the violations not listed in PENDING (the keys they would have there)."""
    out = {"cycle": [], "upward": [], "private": [], "function-level": []}
    for c in cycles(all_edges, files):
        if not _pending("cycle", c[0], " -> ".join(c[1:])):
            out["cycle"].append(_key("cycle", c[0], " -> ".join(c[1:])))
    for rule, found in (("upward", upward_edges(all_edges, files)), ("private", private_imports(all_edges, files)),
                        ("function-level", function_level_project_imports(all_edges, files))):
        for e in found:
            target = _project_target(e, files) or e.target
            if not _pending(rule, e.source, target):
                out[rule].append(f"{_key(rule, e.source, target)}  ({e})")
    return out


def test_no_import_cycles(parsed):
    found = _violations(*parsed)["cycle"]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_upward_edges(parsed):
    found = _violations(*parsed)["upward"]
    assert not found, "imports that point up the layer map (docs/architecture.md):\n" + "\n".join(found)


def test_no_private_imports(parsed):
    found = _violations(*parsed)["private"]
    assert not found, "imports of another module's private names:\n" + "\n".join(found)


def test_function_level_imports_only_for_optional_dependencies(parsed):
    found = _violations(*parsed)["function-level"]
    assert not found, "function-level imports of light project modules (import them at the top):\n" + \
        "\n".join(found)


def test_pending_entries_still_occur(parsed):
    files, all_edges = parsed
    seen = set()
    for c in cycles(all_edges, files):
        seen.add(_key("cycle", c[0], " -> ".join(c[1:])))
    for rule, found in (("upward", upward_edges(all_edges, files)), ("private", private_imports(all_edges, files)),
                        ("function-level", function_level_project_imports(all_edges, files))):
        for e in found:
            target = _project_target(e, files) or e.target
            seen |= {_key(rule, e.source, target), _key(rule, "*", target)}
    stale = sorted(set(PENDING) - seen)
    assert not stale, "fixed — delete these lines from PENDING in tests/test_layers.py:\n" + "\n".join(stale)


def test_deprecated_aliases_exist_and_name_their_release():
    files = modules()
    for name, (release, replacement) in DEPRECATED_ALIASES.items():
        assert name in files, name
        assert release and replacement


def counts() -> dict:
    files = modules()
    all_edges = edges(files)
    return {"modules": len(files), "cycles": len(cycles(all_edges, files)),
            "modules in cycles": len({m for c in cycles(all_edges, files) for m in c}),
            "upward edges": len(upward_edges(all_edges, files)),
            "private imports": len(private_imports(all_edges, files)),
            "function-level project imports": len(function_level_project_imports(all_edges, files)),
            "files with them": len({e.source for e in function_level_project_imports(all_edges, files)})}


if __name__ == "__main__":
    files = modules()
    all_edges = edges(files)
    for c in cycles(all_edges, files):
        print("cycle:", " -> ".join(c))
    for e in upward_edges(all_edges, files):
        print("upward:", e)
    if "-v" in sys.argv:
        for e in private_imports(all_edges, files):
            print("private:", e)
        for e in function_level_project_imports(all_edges, files):
            print("function-level:", e)
    for k, v in counts().items():
        print(f"{k}: {v}")
