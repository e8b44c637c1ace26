"""The package layers: who may import whom, read from the source with ``ast`` (lazy imports in functions count).

Each subpackage keeps its code in private modules (``_name.py``) and offers the rest of naivega_jax only what its
``__init__`` exports, or, for plumbing that is not public API, what its ``internal`` module exports. The root's
private modules ``naivega_jax._errors``, ``_files``, ``_json`` and ``_random`` are the base that every package
shares.

The layers, lowest first. A package imports only packages in lower layers; packages in one layer are independent.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import naivega_jax

ROOT = Path(naivega_jax.__file__).parent

LAYERS = (
    ("_errors", "_files", "_json", "_random"),
    ("data", "graph"),
    ("search", "train"),
    ("mutation",),
    ("evolution",),
    ("distributed", "io", "plot"),
    ("autofit",),
    ("cli",),
    ("__init__",),  # the top-level namespace re-exports every package
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
SHARED_BASE = set(LAYERS[0])


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        yield path, parts


def _unit(parts: tuple[str, ...]) -> str:
    """The layer unit a module belongs to: its subpackage, or the root module's own name."""
    return parts[1] if len(parts) > 1 else "__init__"


def _imported(path: Path, parts: tuple[str, ...]):
    """``(line, text, dotted names)`` for each import of naivega_jax code in one module."""
    package = parts[:-1]  # a module's package; an __init__'s own package (its parts end in "__init__")
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = base + (tuple(node.module.split(".")) if node.module else ())
            else:
                module = tuple(node.module.split("."))
            names = [module + ((a.name,) if a.name != "*" else ()) for a in node.names]
        else:
            continue
        names = [n for n in names if n[0] == ROOT.name]
        if names:
            yield node.lineno, ast.unparse(node), names


def _where(path: Path, line: int, text: str) -> str:
    return f"{path.relative_to(ROOT.parent)}:{line}: {text}"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports() -> list[str]:
    """Imports of a private module or name of another package (the root's shared base excepted)."""
    found = []
    for path, parts in _modules():
        own = _unit(parts)
        for line, text, names in _imported(path, parts):
            reached = []
            for name in names:
                if len(name) < 2 or name[1] == own or name[1] in SHARED_BASE:
                    continue
                first = next((i for i, part in enumerate(name) if _is_private(part)), None)
                if first is not None and ".".join(name[: first + 1]) not in reached:
                    reached.append(".".join(name[: first + 1]))
            if reached:
                found.append(f"{_where(path, line, text)} (reaches into {', '.join(reached)})")
    return found


def layer_violations() -> list[str]:
    """Imports of a package in the same layer or above."""
    found = []
    for path, parts in _modules():
        own = _unit(parts)
        for line, text, names in _imported(path, parts):
            for name in names:
                target = name[1] if len(name) > 1 else "__init__"
                if target == own:
                    continue
                if target not in LAYER:
                    found.append(f"{_where(path, line, text)} imports {target!r}, which LAYERS does not place")
                elif LAYER[target] >= LAYER[own]:
                    how = "the same layer as" if LAYER[target] == LAYER[own] else "a layer above"
                    found.append(f"{_where(path, line, text)} ({target} is in {how} {own})")
    return sorted(set(found))


def test_every_package_and_root_module_has_a_layer():
    units = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {p.stem for p in ROOT.glob("*.py")}
    assert units == set(LAYER)


def test_no_package_imports_another_packages_private_modules_or_names():
    found = private_imports()
    assert found == [], f"{len(found)} import(s) reach into another package's private code:\n" + "\n".join(found)


def test_no_package_imports_its_own_layer_or_above():
    found = layer_violations()
    assert found == [], f"{len(found)} import(s) break the layer order {LAYERS}:\n" + "\n".join(found)


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    # a fake tree with one violation of each kind, relative and absolute, eager and lazy
    pkg = tmp_path / "naivega_jax"
    for sub in ("graph", "search"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "graph" / "_ops.py").write_text("from ..graph import _ops\n")
    (pkg / "graph" / "_up.py").write_text("def f():\n    from ..search import x\n")
    (pkg / "search" / "_a.py").write_text("from ..graph._ops import Dense\nimport naivega_jax.graph._ops\n")
    (pkg / "search" / "_b.py").write_text("from naivega_jax.graph import _hidden, Dense\nfrom .._errors import E\n")
    monkeypatch.setitem(globals(), "ROOT", pkg)
    assert private_imports() == [
        "naivega_jax/search/_a.py:1: from ..graph._ops import Dense (reaches into naivega_jax.graph._ops)",
        "naivega_jax/search/_a.py:2: import naivega_jax.graph._ops (reaches into naivega_jax.graph._ops)",
        "naivega_jax/search/_b.py:1: from naivega_jax.graph import _hidden, Dense "
        "(reaches into naivega_jax.graph._hidden)",
    ]
    assert layer_violations() == [
        "naivega_jax/graph/_up.py:2: from ..search import x (search is in a layer above graph)"
    ]


def test_the_internal_modules_add_nothing_to_the_public_namespace():
    internal = [path.relative_to(ROOT.parent).with_suffix("").parts for path in sorted(ROOT.glob("*/internal.py"))]
    assert {parts[1] for parts in internal} >= {"evolution", "graph", "train"}
    for parts in internal:
        module = importlib.import_module(".".join(parts))
        package = importlib.import_module(".".join(parts[:-1]))
        assert set(module.__all__) & (set(naivega_jax.__all__) | set(package.__all__)) == set(), module.__name__
