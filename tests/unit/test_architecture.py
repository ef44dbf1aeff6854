"""The import rules of .importlinter, and the two that import-linter cannot see, as unit tests.

Why here too: `make lint` may be skipped, the unit tests are not. import-linter
reads imports from the source (function-level and TYPE_CHECKING ones too) but
not a `lazy_module("...")` string, so that one is checked by reading the text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAZY_STORAGE = re.compile(r"""lazy_module\(\s*["']chalicelib\.storage\b""")


def test_the_import_contracts_hold() -> None:
    run = subprocess.run([str(LINT_IMPORTS), "--config", ".importlinter", "--no-cache", "--no-logo"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_api_names_no_storage_module_for_lazy_import() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sorted([*(ROOT / "chalicelib" / "api").rglob("*.py"),
                                 *(ROOT / "chalicelib" / "console").rglob("*.py")])
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if LAZY_STORAGE.search(line)]
    assert not found, "the API reaches storage through a service:\n" + "\n".join(found)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if position < len(edges[node]):
                work.append((node, position + 1))
                child = edges[node][position]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            for child in edges[node]:
                if child in on_stack:
                    low[node] = min(low[node], low[child])
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


def test_no_module_imports_itself_through_others() -> None:
    """Function-level imports count: a cycle broken by importing inside a function is still a cycle."""
    assert _cycles(grimp.build_graph("chalicelib")) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
