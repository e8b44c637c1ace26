"""The documentation builds with warnings as errors, documents every public name, and the architecture page's layer
table holds for the code's imports.

One Sphinx build (a subprocess, as ``make docs`` runs it, into a temporary directory) serves the build tests.
"""

import ast
import html as html_lib
import importlib
import importlib.util
import json
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import naivega_jax as ng

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-E", "-b", "html", str(DOCS), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed (status {proc.returncode}):\n{proc.stderr[-8000:]}"
    return out


def _inventory(html: Path) -> set[str]:
    """The object names in Sphinx's objects.inv (version 2: four header lines, then zlib-compressed lines
    ``name domain:role priority uri display-name``)."""
    raw = (html / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    assert raw.startswith(b"# Sphinx inventory version 2")
    names = set()
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        match = re.match(r"(.+?)\s+(\S+):(\S+)\s+-?\d+\s", line)
        if match and match.group(2) == "py":
            names.add(match.group(1))
    return names


def _public_modules() -> list:
    """naivega_jax, every public subpackage, and every module a public ``__all__`` lists (``ng.datasets``)."""
    modules = [ng]
    for info in pkgutil.iter_modules(ng.__path__):
        module = importlib.import_module(f"naivega_jax.{info.name}")
        if not info.name.startswith("_") and hasattr(module, "__all__"):
            modules.append(module)
    for module in list(modules):
        for name in module.__all__:
            obj = getattr(module, name)
            if type(obj) is type(ng) and obj not in modules:
                modules.append(obj)
    return modules


def test_every_public_name_has_an_entry_in_the_reference(html):
    documented = _inventory(html)
    modules = _public_modules()
    assert {m.__name__ for m in modules} >= {"naivega_jax.graph", "naivega_jax.autofit", "naivega_jax.data.datasets"}
    missing = []
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if type(obj) is type(ng):
                found = obj.__name__ in documented
            elif module is ng:
                # re-exports are documented where their subpackage lists them, the rest on the top page
                found = any(f"{m.__name__}.{name}" in documented and getattr(m, name) is obj for m in modules)
            else:
                found = f"{module.__name__}.{name}" in documented
            if not found:
                missing.append(f"{module.__name__}.{name}")
    assert missing == []
    assert sum(len(m.__all__) for m in modules) > 250  # every public name of every package was checked


def test_every_reference_page_is_reachable_from_the_index(html):
    index = (html / "api" / "index.html").read_text()
    pages = sorted(p.stem for p in (DOCS / "api").glob("*.rst"))
    assert len(pages) >= 12
    for page in pages:
        assert f'href="{page}.html"' in index, page


def test_architecture_page_is_built_and_linked(html):
    page = (html / "architecture.html").read_text()
    headings = re.findall(r"^#{1,3} (.+)$", (DOCS / "architecture.md").read_text(), flags=re.MULTILINE)
    assert len(headings) >= 6
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", page))
    for heading in headings:
        assert re.sub(r"[`*]", "", heading) in text, heading
    assert 'href="architecture.html"' in (html / "index.html").read_text()


def test_readme_and_quickstart_notebook_are_rendered(html):
    readme = (html / "readme.html").read_text()
    assert "The main job" in readme and "naivega fit" in readme
    notebook = ROOT / "notebooks" / "quickstart.ipynb"
    if notebook.exists():
        cells = json.loads(notebook.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        line = next(line.strip() for line in first_code["source"] if line.strip() and not line.startswith("#"))
        quickstart = (html / "quickstart.html").read_text()
        assert re.sub(r"\W+", "", line)[:20] in re.sub(r"\W+", "", re.sub(r"<[^>]+>", "", quickstart))


def _declared_layers() -> dict[str, set[str]]:
    """The layer table of architecture.md: package -> the packages it may import."""
    layers = {}
    for line in (DOCS / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            allowed = set(re.findall(r"`(\w+)`", cells[2])) if cells[2] != "nothing" else set()
            layers[cells[0].strip("`")] = allowed
    return layers


def _imported_packages(path: Path) -> set[str]:
    """The naivega_jax packages (first name under naivega_jax) that the module at ``path`` imports, anywhere in it."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else node.module
            )
            names = [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith("naivega_jax.") and n.count(".") >= 1)
    return found


def test_packages_import_only_what_the_architecture_page_allows():
    layers = _declared_layers()
    package_dir = ROOT / "naivega_jax"
    packages = {p.name for p in package_dir.iterdir() if (p / "__init__.py").exists()}
    assert set(layers) == packages | {"cli"}
    violations = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).parts
        if len(parts) == 1 and path.stem != "cli":
            continue  # the top-level re-exports and the shared _errors/_files/_json/_random
        layer = parts[0] if len(parts) > 1 else "cli"
        for imported in _imported_packages(path) - {layer, "_errors", "_files", "_json", "_random"}:
            if imported not in layers[layer]:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert violations == []
