"""Sphinx configuration: the API reference is generated from each package's ``__all__``.

Build with ``make docs`` (HTML in docs/_build/html, warnings are errors). Every page under api/ holds one
``naivega-autoall`` directive naming a module; the directive documents every name in that module's ``__all__``, so a
name added to an ``__all__`` appears in the reference without editing the docs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import naivega_jax  # noqa: E402

project = "naivega_jax"
author = "naivega_jax contributors"
copyright = "naivega_jax contributors"
release = version = naivega_jax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# The notebook is rendered as stored (with no outputs): executing it needs a kernel, JAX and minutes.
nb_execution_mode = "off"
myst_heading_anchors = 3

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# The source text of a default (optax.softmax_cross_entropy) instead of its repr ("<function ...>"), which the
# signature parser cannot read.
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}

# Every reference must resolve, except two kinds that cannot: names of other projects (the build is offline, so
# there is no intersphinx inventory of numpy, jax, optax, the standard library...) and private names of this one
# (private base classes in "Bases:", private types in signatures), which are undocumented by design.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!naivega_jax\.)[A-Za-z_]\w*\..+"),
    (r"py:.*", r"naivega_jax(\.\w+)*\._\w+.*"),
]

html_theme = "alabaster"
html_title = f"naivega_jax {release}"
html_static_path: list[str] = []


def _kind(obj: object) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _attribute_doc(package: str, name: str) -> list[str]:
    """The ``#:`` comment or string under ``name = ...`` in the private module of ``package`` that defines it.

    autodoc reads such attribute docs only in the module a directive names, and the public name of a constant is its
    package, while the assignment (and its doc) lives in a private module of that package.
    """
    module = importlib.import_module(package)
    modules = [package]
    if hasattr(module, "__path__"):
        modules += [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
    for modname in modules:
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:  # a module without source has no attribute docs
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


def _names_outside_subpackages(package: str) -> list[str]:
    """Names in the top-level ``__all__`` that no subpackage's ``__all__`` lists (documented on the top page)."""
    module = importlib.import_module(package)
    elsewhere: set[str] = set()
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.startswith("_"):
            continue
        sub = importlib.import_module(f"{package}.{info.name}")
        elsewhere.update(getattr(sub, "__all__", ()))
    return [name for name in module.__all__ if name not in elsewhere]


class AutoAll(SphinxDirective):
    """``.. naivega-autoall:: MODULE``: the module's docstring, then every name in its ``__all__``.

    Option ``:exclude-subpackage-names:`` keeps only the names that no subpackage lists (for the top-level package,
    whose ``__all__`` re-exports every subpackage's names).
    """

    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict] = {"exclude-subpackage-names": directives.flag}

    def run(self) -> list[nodes.Node]:
        modname = self.arguments[0]
        module = importlib.import_module(modname)
        if "exclude-subpackage-names" in self.options:
            names = _names_outside_subpackages(modname)
        else:
            names = list(module.__all__)
        lines = [f".. automodule:: {modname}", "   :no-members:", ""]
        for name in names:
            obj = getattr(module, name)
            kind = _kind(obj)
            if kind == "module":
                lines += [f"* :mod:`{obj.__name__}` (own page)", ""]
                continue
            if kind == "data":
                # py:data rather than autodata: autodata shows the docstring of the value's type (str's, tuple's)
                # when the constant has none of its own.
                lines += [f".. py:data:: {name}", f"   :module: {modname}", f"   :value: {obj!r}", ""]
                lines += [f"   {line}" for line in _attribute_doc(modname, name)]
            else:
                directive = {"exception": "autoexception", "class": "autoclass"}.get(kind, "autofunction")
                lines.append(f".. {directive}:: {modname}.{name}")
            lines.append("")
        content = StringList(lines, source=f"<naivega-autoall {modname}>")
        node = nodes.container()
        nested_parse_with_titles(self.state, content, node)
        return node.children


def setup(app: Sphinx) -> dict:
    app.add_directive("naivega-autoall", AutoAll)
    return {"parallel_read_safe": True}
