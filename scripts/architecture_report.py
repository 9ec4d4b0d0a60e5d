"""Measure the shape of ``mosflm_py``: import circles, function-level imports, sizes.

Usage::

    python scripts/architecture_report.py            # text report
    python scripts/architecture_report.py --json     # the same figures as JSON

What it measures (issue 11, docs/architecture.md):

- **Import circles**: strongly connected components of the import graph among ``mosflm_py``
  modules, counting imports inside functions too (a function-level import hides a circle; it does
  not remove it). Importing ``mosflm_py.a.b`` also runs ``mosflm_py/a/__init__.py`` unless the
  importer lives inside ``mosflm_py.a`` itself, so such edges are counted. Imports under
  ``if TYPE_CHECKING:`` never run and are left out.
- **Function-level imports**: ``import`` statements inside a function body, and which of them are
  allowed (optional or heavy third-party packages imported where they are used, see
  :data:`LAZY_ALLOWED`).
- **Sizes**: the largest module and function (lines), and the lines of ``mosflm_py/actions/``.
- **KeywordError in algorithms**: ``KeywordError`` belongs to the keyword layer (registry, setters,
  session, actions); algorithm modules raise their own errors from ``errors.py``.

The module is importable: ``tests/test_architecture.py`` uses :func:`import_graph`,
:func:`import_circles` and :func:`function_level_imports`.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "mosflm_py"

#: Top-level packages that may be imported inside a function: optional or heavy third-party
#: dependencies (startup time of ``mosflm-py --help`` and of importing the package, optional
#: extras), imported where they are used. Everything else is imported at the top of the module.
LAZY_ALLOWED: frozenset[str] = frozenset(
    {
        "gemmi",  # symmetry/MTZ; slow to import
        "fabio",  # image formats; slow to import
        "h5py",  # optional extra (HDF5 images)
        "hdf5plugin",  # optional extra (HDF5 compression filters)
        "numba",  # JIT; only kernels/ imports it
        "scipy",  # slow to import; used by a few algorithms
        "readline",  # absent on some platforms
    }
)

#: Modules that may import package modules inside functions, and why.
LAZY_MODULES: dict[str, str] = {
    "mosflm_py.cli": "installs the signal handlers before importing the program (numpy, images),"
    " so Ctrl-C during start-up exits with 130 and one *** line, and --help starts at once",
}

#: Modules of the keyword layer, where ``KeywordError`` (a user's keyword is wrong) belongs.
KEYWORD_LAYER: tuple[str, ...] = (
    "mosflm_py.actions",
    "mosflm_py.registry",
    "mosflm_py.setters",
    "mosflm_py.session",
    "mosflm_py.lexer",
    "mosflm_py.repl",
    "mosflm_py.cli",
    "mosflm_py.state",
    "mosflm_py.helptext",
    "mosflm_py.errors",
)


@dataclass(frozen=True)
class ImportSite:
    """One import statement that names a module."""

    importer: str  # dotted module name of the file holding the statement
    target: str  # dotted name of the module imported (first component for third-party)
    path: str  # file, relative to the repository
    line: int
    in_function: bool
    type_checking: bool


def module_files(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    files = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool, type_checking: bool):
    """Yield (import node, in_function, type_checking) for every import under *node*."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, False)
        else:
            yield from _walk(child, in_function, type_checking)


def import_sites(root: Path = REPO) -> list[ImportSite]:
    """Every import statement in the package, resolved to module names."""
    files = module_files(root)
    sites = []
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(root))
        for node, in_function, type_checking in _walk(tree, False, False):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = module.split(".")
                    if not is_package:
                        base = base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                for alias in node.names:
                    sub = f"{stem}.{alias.name}"
                    targets.append(sub if sub in files else stem)
            for target in dict.fromkeys(targets):
                if target.split(".")[0] != PACKAGE:
                    target = target.split(".")[0]
                sites.append(
                    ImportSite(module, target, rel, node.lineno, in_function, type_checking)
                )
    return sites


def import_graph(
    root: Path = REPO, *, include_function_level: bool = True, include_type_checking: bool = False
) -> dict[str, dict[str, list[ImportSite]]]:
    """Runtime import graph among package modules: importer → target → sites.

    Importing ``a.b.c`` first runs the ``__init__`` of ``a`` and ``a.b``; those edges are added
    unless the importer is inside that package already (its ``__init__`` is then running or done).
    With *include_type_checking*, imports under ``if TYPE_CHECKING:`` count too: they never run,
    but a circle through them still means a lower layer names a higher one.
    """
    files = module_files(root)
    graph: dict[str, dict[str, list[ImportSite]]] = {m: {} for m in files}
    for site in import_sites(root):
        if (site.type_checking and not include_type_checking) or site.target not in files:
            continue
        if site.in_function and not include_function_level:
            continue
        parts = site.target.split(".")
        chain = [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
        for target in chain:
            inside = site.importer == target or site.importer.startswith(target + ".")
            if target == site.target or not inside:
                if target != site.importer and target in files:
                    graph[site.importer].setdefault(target, []).append(site)
    return graph


def import_circles(graph: dict[str, dict[str, list[ImportSite]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def function_level_imports(root: Path = REPO) -> list[ImportSite]:
    """Import statements inside function bodies (excluding ``TYPE_CHECKING`` blocks)."""
    return [s for s in import_sites(root) if s.in_function and not s.type_checking]


def is_allowed_lazy(site: ImportSite) -> bool:
    """Whether a function-level import is allowed: a listed optional/heavy dependency, or in a
    module of :data:`LAZY_MODULES`."""
    return site.target.split(".")[0] in LAZY_ALLOWED or site.importer in LAZY_MODULES


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def largest_functions(root: Path = REPO, n: int = 5) -> list[tuple[int, str]]:
    """The *n* longest functions or methods: (lines, "path:line name")."""
    found = []
    for path in module_files(root).values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                found.append((length, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)[:n]


def keyword_errors_in_algorithms(root: Path = REPO) -> dict[str, int]:
    """Modules outside the keyword layer that raise ``KeywordError``: module → raise statements."""
    counts = {}
    for module, path in module_files(root).items():
        if module.startswith(KEYWORD_LAYER):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        n = sum(
            1
            for node in ast.walk(tree)
            if isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and isinstance(node.exc.func, ast.Name)
            and node.exc.func.id == "KeywordError"
        )
        if n:
            counts[module] = n
    return counts


def keyword_hooks(root: Path = REPO) -> list[tuple[str, str, str, str, bool]]:
    """(keyword, kind, role, "module:function", implemented) for every hook in keywords/*.toml.

    Roles: ``handler`` (what GO runs for an action, or what a control keyword does),
    ``apply`` (turns the record into settings), ``effect`` (runs at once after the settings).
    """
    rows = []
    for path in sorted((root / "keywords").glob("*.toml")):
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        implemented = spec.get("implemented", True)
        for role in ("handler", "apply", "effect"):
            if hook := spec.get(role):
                rows.append((spec["name"], spec.get("kind", ""), role, hook, implemented))
        for sub, subspec in (spec.get("subkeywords") or {}).items():
            for role in ("handler", "apply", "effect"):
                if isinstance(subspec, dict) and (hook := subspec.get(role)):
                    rows.append(
                        (f"{spec['name']} {sub}", spec.get("kind", ""), role, hook, implemented)
                    )
    return rows


def handler_table(root: Path = REPO) -> str:
    """Markdown table: which module handles which keywords (for docs/architecture.md)."""
    by_module: dict[str, list[str]] = {}
    for name, _kind, role, hook, implemented in keyword_hooks(root):
        module = hook.partition(":")[0]
        label = name if role == "handler" else f"{name} ({role})"
        if not implemented:
            label += " (not implemented yet)"
        by_module.setdefault(module, []).append(label)
    out = ["| module | keywords (hook role when not the handler) |", "|---|---|"]
    for module in sorted(by_module):
        path = module.replace(".", "/") + ".py"
        out.append(f"| `{path}` | {', '.join(by_module[module])} |")
    return "\n".join(out)


def measure(root: Path = REPO) -> dict:
    """All figures of the report as plain data."""
    files = module_files(root)
    full = import_graph(root)
    top = import_graph(root, include_function_level=False)
    typed = import_graph(root, include_type_checking=True)
    lazy = function_level_imports(root)
    circles = import_circles(full)
    circle_edges = []
    for component in circles:
        members = set(component)
        for a in component:
            for b, sites in full[a].items():
                if b in members:
                    for s in sites:
                        where = "function" if s.in_function else "module"
                        circle_edges.append(f"{a} -> {b}  ({s.path}:{s.line}, {where} level)")
    modules = sorted(((_lines(p), m) for m, p in files.items()), reverse=True)
    actions = {m: _lines(p) for m, p in files.items() if m.startswith(f"{PACKAGE}.actions")}
    kw = keyword_errors_in_algorithms(root)
    return {
        "modules": len(files),
        "lines": sum(n for n, _ in modules),
        "import_circles": circles,
        "import_circle_edges": circle_edges,
        "import_circles_module_level_only": import_circles(top),
        "import_circles_with_type_checking": import_circles(typed),
        "function_level_imports": len(lazy),
        "function_level_imports_internal": sum(s.target.startswith(PACKAGE) for s in lazy),
        "function_level_imports_not_allowed": [
            f"{s.path}:{s.line} {s.target}" for s in lazy if not is_allowed_lazy(s)
        ],
        "largest_modules": [[n, m] for n, m in modules[:5]],
        "largest_functions": [list(x) for x in largest_functions(root)],
        "actions_lines": sum(actions.values()),
        "actions_modules": len(actions),
        "keyword_error_in_algorithms": {"places": sum(kw.values()), "modules": kw},
    }


def format_report(m: dict) -> str:
    """Human-readable text of :func:`measure`'s figures."""
    out = [f"mosflm_py: {m['modules']} modules, {m['lines']} lines"]
    out.append(
        f"import circles (counting function-level imports): {len(m['import_circles'])}"
        f" ({sum(len(c) for c in m['import_circles'])} modules)"
    )
    for c in m["import_circles"]:
        out.append("  circle: " + ", ".join(c))
    for e in m["import_circle_edges"]:
        out.append("    " + e)
    out.append(
        f"import circles (module-level imports only): {len(m['import_circles_module_level_only'])}"
    )
    typed = m["import_circles_with_type_checking"]
    out.append(f"import circles (also counting TYPE_CHECKING imports): {len(typed)}")
    for c in typed:
        out.append("  circle: " + ", ".join(c))
    out.append(
        f"function-level imports: {m['function_level_imports']}"
        f" ({m['function_level_imports_internal']} of mosflm_py modules;"
        f" {len(m['function_level_imports_not_allowed'])} not in the allowed"
        f" optional/heavy list {sorted(LAZY_ALLOWED)} or in {sorted(LAZY_MODULES)})"
    )
    out.append(
        "largest modules (lines): " + ", ".join(f"{m_} {n}" for n, m_ in m["largest_modules"])
    )
    out.append("largest functions (lines):")
    for n, name in m["largest_functions"]:
        out.append(f"  {n:5d}  {name}")
    out.append(f"lines of actions/: {m['actions_lines']} in {m['actions_modules']} modules")
    kw = m["keyword_error_in_algorithms"]
    out.append(f"KeywordError in algorithm modules: {kw['places']} in {len(kw['modules'])} modules")
    for mod, n in sorted(kw["modules"].items()):
        out.append(f"  {n:3d}  {mod}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--list-lazy", action="store_true", help="list disallowed lazy imports")
    parser.add_argument(
        "--handlers", action="store_true", help="print the keyword-handler table (markdown)"
    )
    args = parser.parse_args(argv)
    if args.handlers:
        print(handler_table())
        return 0
    m = measure()
    if args.json:
        print(json.dumps(m, indent=1))
    else:
        print(format_report(m))
        if args.list_lazy:
            for s in m["function_level_imports_not_allowed"]:
                print("  " + s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
