"""The import layering of the `tfnas` package: no import cycles, and the rules of ARCHITECTURE.md.

Every module's imports are read with `ast` (nothing is imported), absolute
and relative, at module level and inside functions.

* Cycles count every import, those inside functions included. An import
  inside a function runs later than a module-level one, but it is still a
  dependency: two modules that need each other are one module split in
  two, whenever the import happens. Lazy imports stay where they load an
  optional or heavy *external* package (Ray, tf2onnx, onnxruntime,
  matplotlib; the command line loads TensorFlow only for the subcommands
  that need it): those are imports of other packages and cannot close a
  cycle inside tfnas. No internal cycle has to stay, so there is no
  allow-list.
* Layering rules count every import too: a lazy import is still a
  dependency of the importing package, only a deferred one.
* Which modules load TensorFlow (`LOADS_TENSORFLOW`) follows module-level
  imports only: that is what loading a module runs.

`RULES` holds every cell of the "never does" column of ARCHITECTURE.md's
packages table that an import can break; the cells that are not import
rules say so on the page. The one rule about module-level imports only,
that the frozen cells and heads (`FROZEN_CELLS`) load no ``tensorflow``
(Keras alone, on any backend), is a test of its own.

Imports under ``if TYPE_CHECKING:`` never run; they are counted like any
other import (`tfnas.data.batching` has one, of `tfnas.data.corpus`, which
closes no cycle).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "tfnas"

TENSORFLOW = ("tensorflow", "keras")
#: Stands, in a rule, for every tfnas module whose module-level imports load TensorFlow or Keras.
LOADS_TENSORFLOW = "<modules that load tensorflow>"


@dataclass(frozen=True)
class Rule:
    """``importers`` (module prefixes) may not import ``forbidden`` (prefixes) other than ``allowed`` (prefixes),
    except the modules in ``exempt``."""

    importers: str
    forbidden: tuple[str, ...]
    exempt: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()


#: The "never does" column of ARCHITECTURE.md's packages table as import rules, in the table's order (the rows of
#: subpackages fall under their package's rule, and have their own where they name more; the registry's rule is from
#: its "owns" cell: no strategy module imports it; the last is `cells/base.py`'s: the only import of private
#: ``keras.src``). A prefix ``a.b`` matches ``a.b`` and ``a.b.*``.
RULES: tuple[Rule, ...] = (
    #    importers                 may not import                                      except (importers)
    Rule("tfnas.genotypes",        TENSORFLOW + (LOADS_TENSORFLOW, "tfnas.spaces")),
    Rule("tfnas.spaces",           TENSORFLOW + (LOADS_TENSORFLOW, "tfnas.lm", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.data",             ("tfnas.cells", "tfnas.lm", "tfnas.policies", "tfnas.strategies")),
    Rule("tfnas.cells",            ("tfnas.spaces", "tfnas.lm", "tfnas.strategies",  # cells/search/ included
                                    "tfnas.presets", "tfnas.resources")),
    Rule("tfnas.lm",               ("tfnas.spaces", "tfnas.policies", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.lm.model",         ("tfnas.presets", "tfnas.resources")),               # the Keras layers and models
    Rule("tfnas.lm.regularizers",  ("tfnas.presets", "tfnas.resources")),
    Rule("tfnas.runs",             ("tfnas.cells", "tfnas.lm", "tfnas.policies", "tfnas.strategies")),
    Rule("tfnas.policies",         ("tfnas.data", "tfnas.lm", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.evaluation",       ("tfnas.policies", "tfnas.strategies")),
    Rule("tfnas.strategies",       ("tfnas.viz",)),
    Rule("tfnas.strategies",       ("tfnas.strategies.registry",),                     ("tfnas.strategies.registry",)),
    Rule("tfnas.strategies.one_shot",  ("tfnas.strategies.black_box",)),
    Rule("tfnas.strategies.black_box", ("tfnas.strategies.one_shot",)),
    Rule("tfnas.export",           ("tfnas.lm.trainer", "tfnas.lm.objective", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.serving",          TENSORFLOW + ("tfnas.lm", "tfnas.runs", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.compare",          TENSORFLOW + ("tfnas.cells", "tfnas.policies")),
    Rule("tfnas.viz",              TENSORFLOW + (LOADS_TENSORFLOW,)),
    Rule("tfnas.callbacks",        ("tfnas.policies", "tfnas.evaluation", "tfnas.strategies")),
    Rule("tfnas.hparams",          ("tfnas.viz", "tfnas.policies", "tfnas.strategies")),
    Rule("tfnas.progress",         TENSORFLOW + ("tfnas",)),
    Rule("tfnas.startup_log",      TENSORFLOW + ("tfnas",)),
    Rule("tfnas._version",         TENSORFLOW + ("tfnas",)),
    Rule("tfnas.metrics",          TENSORFLOW + (LOADS_TENSORFLOW,)),
    Rule("tfnas.results",          TENSORFLOW + (LOADS_TENSORFLOW, "tfnas.strategies", "tfnas.export")),
    Rule("tfnas.settings",         ("yaml", "tfnas"),                                  allowed=("tfnas.errors",)),
    Rule("tfnas.config",           ("yaml", "tfnas.presets", "tfnas.resources")),
    Rule("tfnas",                  ("keras.src",),                                     ("tfnas.cells.base",)),
)

#: The frozen cells and attention heads, which load no TensorFlow at module level (`keras.ops` only).
FROZEN_CELLS = ("tfnas.cells", "tfnas.cells.base", "tfnas.cells.activations", "tfnas.cells.genotype_cell",
                "tfnas.cells.tree_cell", "tfnas.cells.attention", "tfnas.cells.layer")


@dataclass(frozen=True)
class Import:
    """One imported module: ``importer`` imports ``target`` at ``line``; ``lazy`` if inside a function."""

    importer: str
    target: str
    line: int
    lazy: bool


# ------------------------------------------------------------------ reading
def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package in ``package_dir`` by dotted name (a package by its ``__init__.py``),
    with its path relative to the folder that holds the package."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        path = path.relative_to(package_dir.parent)
        parts = path.with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _base(module: str, path: Path, level: int, name: str | None) -> str:
    """The absolute module of ``from <level dots><name> import ...`` written in ``module``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if level:
        package = package[: len(package) - level + 1]
    return ".".join(package + ([name] if name else [])) if level else name


def _imports_of(tree: ast.AST, module: str, path: Path, modules: Iterable[str]) -> list[Import]:
    modules = set(modules)
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node.level, node.module)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                # `from pkg import sub` imports the submodule; `from mod import name` only `mod`.
                internal = base.split(".")[0] == module.split(".")[0]
                target = full if alias.name != "*" and (full in modules or not internal) else base
                found.append(Import(module, target, node.lineno, lazy))
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return list(dict.fromkeys(found))  # `from m import a, b` imports m once


def read_imports(package_dir: Path) -> list[Import]:
    """The imports of every module of the package in ``package_dir``, in file and line order."""
    modules = module_names(package_dir)
    out = []
    for module, path in modules.items():
        tree = ast.parse((package_dir.parent / path).read_text(encoding="utf-8"), filename=str(path))
        out += _imports_of(tree, module, path, modules)
    return out


# ------------------------------------------------------------------- cycles
Graph = Mapping[str, Mapping[str, Import]]


def import_graph(imports: Iterable[Import], modules: Iterable[str]) -> dict[str, dict[str, Import]]:
    """The edges of ``imports`` between ``modules``: ``graph[a][b]`` is the first import of ``b`` by ``a``."""
    modules = set(modules)
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for imp in imports:
        if imp.target in modules and imp.target != imp.importer:
            graph[imp.importer].setdefault(imp.target, imp)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_through(min(c), c, graph) for c in components]


def _cycle_through(start: str, component: set[str], graph: Graph) -> list[str]:
    """A shortest path ``start -> ... -> start`` inside ``component`` (breadth first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in component:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start] + path[::-1][1:] + [start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no cycle of {sorted(component)}")


def format_cycle(cycle: Sequence[str], graph: Graph) -> str:
    """``a (line 3) -> b (line 7, in a function) -> a``: each module with the line that imports the next one."""
    def edge(a: str, b: str) -> str:
        imp = graph[a][b]
        return f"{a} (line {imp.line}{', in a function' if imp.lazy else ''})"

    return " -> ".join(edge(a, b) for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def cycle_report(package_dir: Path) -> list[str]:
    """Every import cycle of the package in ``package_dir``, function-level imports included, formatted."""
    graph = import_graph(read_imports(package_dir), module_names(package_dir))
    return [format_cycle(cycle, graph) for cycle in find_cycles(graph)]


# -------------------------------------------------------------------- rules
def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def loading_tensorflow(imports: Sequence[Import], modules: Iterable[str],
                       packages: Sequence[str] = TENSORFLOW) -> set[str]:
    """The modules whose module-level imports, followed through ``modules``, reach ``packages`` (TensorFlow or
    Keras by default)."""
    graph = import_graph([i for i in imports if not i.lazy], modules)
    loads = {i.importer for i in imports if not i.lazy and any(_matches(i.target, p) for p in packages)}
    changed = True
    while changed:
        grown = loads | {m for m, targets in graph.items() if loads.intersection(targets)}
        changed, loads = grown != loads, grown
    return loads


def rule_violations(imports: Sequence[Import], rules: Iterable[Rule], modules: Mapping[str, Path]) -> list[str]:
    """``path:line: importer imports target (rule)`` for every import, lazy or not, that breaks a rule."""
    tf_modules = loading_tensorflow(imports, modules)
    out = []
    for rule in rules:
        for imp in imports:
            if not _matches(imp.importer, rule.importers) or any(_matches(imp.importer, e) for e in rule.exempt):
                continue
            if any(_matches(imp.target, a) for a in rule.allowed):
                continue
            for forbidden in rule.forbidden:
                hit = imp.target in tf_modules if forbidden == LOADS_TENSORFLOW else _matches(imp.target, forbidden)
                if hit:
                    where = modules[imp.importer]
                    out.append(f"{where}:{imp.line}: {imp.importer} imports {imp.target}"
                               f"{' (in a function)' if imp.lazy else ''}; {rule.importers} may not import "
                               f"{forbidden}")
    return out


# -------------------------------------------------------------- the package
@pytest.fixture(scope="module")
def package():
    modules = module_names(PACKAGE_DIR)
    return modules, read_imports(PACKAGE_DIR)


def test_package_has_no_import_cycle():
    cycles = cycle_report(PACKAGE_DIR)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.importers}-not-{'+'.join(r.forbidden)}")
def test_layering_rule(package, rule):
    modules, imports = package
    violations = rule_violations(imports, [rule], modules)
    assert not violations, "\n".join(violations)


def test_the_reader_sees_the_package():
    """Sanity of the reader on known facts of tfnas: the modules it lists and imports it resolves."""
    modules = module_names(PACKAGE_DIR)
    imports = read_imports(PACKAGE_DIR)
    assert {"tfnas", "tfnas.cells", "tfnas.cells.base", "tfnas.genotypes.dag", "tfnas.strategies.registry"} \
        <= set(modules)
    base_imports = {i.target for i in imports if i.importer == "tfnas.cells.base" and not i.lazy}
    assert {"keras.src.layers.rnn.dropout_rnn_cell.DropoutRNNCell", "keras.ops"} <= base_imports
    tf_modules = loading_tensorflow(imports, modules)
    assert {"tfnas.cells.base", "tfnas.cells.search.mixed_cell", "tfnas.lm.model"} <= tf_modules
    assert not {"tfnas.genotypes.dag", "tfnas.genotypes.files", "tfnas.resources"} & tf_modules
    graph = import_graph(imports, modules)
    assert graph["tfnas.compare.runner"]["tfnas.lm.trainer"].lazy  # function-level imports are edges
    assert not graph["tfnas.compare.runner"]["tfnas.compare.report"].lazy


def test_frozen_cells_load_no_tensorflow(package):
    """ARCHITECTURE.md, ``cells/``: the frozen cells and heads are `keras.ops` only, so importing them (and the
    package ``tfnas.cells``) needs Keras on any backend and no TensorFlow (tests/cells/test_backends.py imports
    them where ``tensorflow`` cannot be imported)."""
    modules, imports = package
    assert set(FROZEN_CELLS) <= set(modules)
    assert not loading_tensorflow(imports, modules, packages=("tensorflow",)) & set(FROZEN_CELLS)


def test_every_rule_names_modules_that_exist():
    """A misspelt prefix would check nothing: each rule's importers, exemptions and tfnas targets match a module."""
    modules = module_names(PACKAGE_DIR)
    named = {prefix for rule in RULES for prefix in (rule.importers, *rule.exempt, *rule.forbidden, *rule.allowed)
             if prefix.split(".")[0] == "tfnas"}
    assert {p for p in named if not any(_matches(m, p) for m in modules)} == set()


# ------------------------------------------------------- the checker itself
def write_package(root: Path, files: Mapping[str, str]) -> Path:
    """Writes ``{"pkg/a.py": source}`` under ``root``; returns the package folder ``root/pkg``."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / next(iter(files)).split("/")[0]


def test_resolves_absolute_relative_and_submodule_imports(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "import os.path\nfrom . import b\nfrom .b import g\n\ndef f():\n    from pkg.sub import c\n",
        "pkg/b.py": "from pkg.sub.c import h\nfrom pkg.sub.c import *\n\ndef g():\n    return 1\n",
        "pkg/sub/__init__.py": "from .. import b\nfrom ..a import f\n",
        "pkg/sub/c.py": "from ..sub import c\nfrom keras import src\n\nh = 1\n",
    })
    got = {(i.importer, i.target, i.line, i.lazy) for i in read_imports(pkg)}
    assert got == {
        ("pkg", "pkg.a", 1, False),
        ("pkg.a", "os.path", 1, False), ("pkg.a", "pkg.b", 2, False), ("pkg.a", "pkg.b", 3, False),
        ("pkg.a", "pkg.sub.c", 6, True),
        ("pkg.b", "pkg.sub.c", 1, False), ("pkg.b", "pkg.sub.c", 2, False),
        ("pkg.sub", "pkg.b", 1, False), ("pkg.sub", "pkg.a", 2, False),
        ("pkg.sub.c", "pkg.sub.c", 1, False), ("pkg.sub.c", "keras.src", 2, False),
    }


def test_a_cycle_is_found_and_printed_with_its_lines(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import pkg.b\n",
        "pkg/b.py": "import json\nfrom pkg import c\n",
        "pkg/c.py": "\n\nfrom pkg.a import x\n",
        "pkg/d.py": "import pkg.a\n",
    })
    modules = module_names(pkg)
    graph = import_graph(read_imports(pkg), modules)
    cycles = find_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert format_cycle(cycles[0], graph) == "pkg.a (line 1) -> pkg.b (line 2) -> pkg.c (line 3) -> pkg.a"


def test_a_function_level_import_closes_a_cycle(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg.b import g\n    return g()\n",
        "pkg/b.py": "import os\n\ndef g():\n    from pkg import a\n    import json\n    return a\n",
        "pkg/c.py": "class C:\n    import pkg.d\n",
        "pkg/d.py": "import pkg.c\n",
        "pkg/e.py": "def later():\n    import pkg.a\n",
    })
    assert cycle_report(pkg) == [
        "pkg.a (line 2, in a function) -> pkg.b (line 4, in a function) -> pkg.a",
        "pkg.c (line 2) -> pkg.d (line 1) -> pkg.c",  # a class body runs at import time, and counts the same
    ]


def test_the_package_test_fails_on_a_function_level_cycle(tmp_path, monkeypatch):
    """The test that guards tfnas, run on a package whose only cycle is two imports inside functions."""
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/report.py": "def write():\n    from pkg.runner import units\n    return units()\n",
        "pkg/runner.py": "def run():\n    from pkg.report import write\n    return write()\n\ndef units():\n"
                         "    return []\n",
    })
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", pkg)
    with pytest.raises(AssertionError) as failure:
        test_package_has_no_import_cycle()
    assert "pkg.report (line 2, in a function) -> pkg.runner (line 2, in a function) -> pkg.report" \
        in str(failure.value)


def test_forbidden_imports_are_reported_with_file_and_line(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/pure.py": "import math\n\ndef f():\n    from pkg.high import heavy\n",
        "pkg/low/uses.py": "from pkg.mid import wraps_tf\n",
        "pkg/low/exempt.py": "from pkg.high.heavy import thing\n",
        "pkg/mid/__init__.py": "",
        "pkg/mid/wraps_tf.py": "from pkg.mid import deeper\n",
        "pkg/mid/deeper.py": "import tensorflow as tf\n",
        "pkg/high/__init__.py": "",
        "pkg/high/heavy.py": "from keras.src import backend\n",
    })
    modules = module_names(pkg)
    imports = read_imports(pkg)
    assert loading_tensorflow(imports, modules) == {"pkg.mid.wraps_tf", "pkg.mid.deeper", "pkg.high.heavy",
                                                   "pkg.low.uses", "pkg.low.exempt"}
    rules = [Rule("pkg.low", ("pkg.high",), ("pkg.low.exempt",)), Rule("pkg.low", (LOADS_TENSORFLOW,)),
             Rule("pkg", ("keras.src",), ("pkg.high",))]
    assert rule_violations(imports, rules, modules) == [
        "pkg/low/pure.py:4: pkg.low.pure imports pkg.high.heavy (in a function); "
        "pkg.low may not import pkg.high",
        "pkg/low/exempt.py:1: pkg.low.exempt imports pkg.high.heavy; "
        f"pkg.low may not import {LOADS_TENSORFLOW}",
        "pkg/low/pure.py:4: pkg.low.pure imports pkg.high.heavy (in a function); "
        f"pkg.low may not import {LOADS_TENSORFLOW}",
        "pkg/low/uses.py:1: pkg.low.uses imports pkg.mid.wraps_tf; "
        f"pkg.low may not import {LOADS_TENSORFLOW}",
    ]
    assert rule_violations(imports, [Rule("pkg", ("keras.src",))], modules) == [
        "pkg/high/heavy.py:1: pkg.high.heavy imports keras.src.backend; pkg may not import keras.src"]


def test_an_allowed_target_is_not_reported_and_the_rest_of_the_prefix_is(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/base.py": "from pkg import errors\nfrom pkg.errors import E\nimport json\n\n"
                       "def f():\n    from pkg import other\n",
        "pkg/errors.py": "E = 1\n",
        "pkg/other.py": "",
    })
    rules = [Rule("pkg.base", ("json", "pkg"), allowed=("pkg.errors",))]
    assert rule_violations(read_imports(pkg), rules, module_names(pkg)) == [
        "pkg/base.py:3: pkg.base imports json; pkg.base may not import json",
        "pkg/base.py:6: pkg.base imports pkg.other (in a function); pkg.base may not import pkg",
    ]
