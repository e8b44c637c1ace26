"""Graph specs as JSON; whole graphs saved atomically (orbax for arrays, JSON for the spec)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._errors import GraphError
from ._graph import Graph
from ._ops import Op, PartialIdentityInit
from ._ops_shape import OPS
from ._spec import GraphSpec

FORMAT = "naivega_jax.graph/1"


def op_to_json(op: Op) -> dict[str, Any]:
    return {"type": type(op).__name__, **{f.name: getattr(op, f.name) for f in dataclasses.fields(op)}}


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def op_from_json(data: dict[str, Any]) -> Op:
    data = dict(data)
    name = data.pop("type", None)
    cls = OPS.get(name)
    if cls is None:
        raise GraphError(f"unknown op type {name!r} in graph JSON; known: {sorted(OPS)} (ng.register_op adds more)")
    return cls(**{k: _tuples(v) for k, v in data.items()})


def to_json(spec: GraphSpec | Graph, **dumps_kwargs: Any) -> str:
    """The spec as a JSON string (a graph's spec if given a graph).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.from_json(ng.to_json(g.spec)) == g.spec
        True
    """
    if isinstance(spec, Graph):
        spec = spec.spec
    data = {
        "format": FORMAT,
        "inputs": list(spec.inputs),
        "outputs": list(spec.outputs),
        "vertices": [
            {"name": v.name, "op": op_to_json(v.op), "inputs": list(v.inputs)}
            | ({} if v.shield is None else {"shield": list(v.shield)})
            for v in spec.vertices
        ],
    }
    dumps_kwargs.setdefault("default", _numpy_scalar)
    return json.dumps(data, **dumps_kwargs)


def _numpy_scalar(value: Any) -> Any:
    # op fields drawn by numpy (search spaces sample sizes and rates with it) serialise as Python numbers
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"to_json: cannot serialise {type(value).__name__} value {value!r}")


def from_json(text: str | dict[str, Any]) -> GraphSpec:
    """The spec a ``to_json`` string describes (validated).

    Example:
        >>> import naivega_jax as ng
        >>> spec = ng.from_json('{"inputs": ["in"], "outputs": ["in"], "vertices": '
        ...                     '[{"name": "in", "op": {"type": "Input", "shape": [3]}, "inputs": []}]}')
        >>> spec.nout("in")
        3
    """
    data = json.loads(text) if isinstance(text, str) else text
    try:
        entries = [(v["name"], op_from_json(v["op"]), v["inputs"]) for v in data["vertices"]]
        shields = {v["name"]: tuple(v["shield"]) for v in data["vertices"] if v.get("shield") is not None}
        return GraphSpec.create(entries, data["inputs"], data["outputs"], shields)
    except (KeyError, TypeError) as e:
        raise GraphError(f"malformed graph JSON: missing or wrong field {e}") from None


def weight_init_to_json(init: Any) -> Any:
    if isinstance(init, PartialIdentityInit):
        return {"in_offset": init.in_offset, "out_offset": init.out_offset}
    return init


def atomic_directory(path: str | os.PathLike, write) -> Path:
    """Runs ``write(tmp_dir)`` then moves ``tmp_dir`` to ``path`` so readers never see a half-written directory.

    An existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = None
    try:
        write(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            path.rename(old)
        tmp.rename(path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            old.rename(path)  # the new directory never arrived: put the old one back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def save_arrays(path: Path, tree: Any) -> None:
    import orbax.checkpoint as ocp

    ocp.PyTreeCheckpointer().save(Path(path).absolute(), tree)  # orbax refuses relative paths


def load_arrays(path: Path) -> Any:
    import orbax.checkpoint as ocp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ocp.PyTreeCheckpointer().restore(Path(path).absolute())


def save_graph(path: str | os.PathLike, graph: Graph) -> Path:
    """Saves ``graph`` to the directory ``path`` (``spec.json`` plus orbax ``arrays/``), atomically.

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> d = tempfile.mkdtemp()
        >>> ng.load_graph(ng.save_graph(d + "/g", g)).spec == g.spec
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"save_graph: graph must be an ng.Graph, got {type(graph).__name__}")

    def write(tmp: Path) -> None:
        (tmp / "spec.json").write_text(to_json(graph.spec, indent=1))
        save_arrays(tmp / "arrays", {"params": graph.params, "state": graph.state})

    return atomic_directory(path, write)


def load_graph(path: str | os.PathLike) -> Graph:
    """Loads a graph written by ``save_graph``; raises ``GraphError`` if its arrays do not fit its spec.

    Example:
        >>> import jax, tempfile, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> loaded = ng.load_graph(ng.save_graph(tempfile.mkdtemp() + "/g", g))
        >>> bool(np.array_equal(loaded.params["d"]["kernel"], g.params["d"]["kernel"]))
        True
    """
    path = Path(path)
    spec_file = path / "spec.json"
    if not spec_file.is_file():
        raise GraphError(f"load_graph: {str(path)!r} is not a saved graph (no spec.json in it)")
    spec = from_json(spec_file.read_text())
    tree = load_arrays(path / "arrays")
    # via numpy: orbax restores device-committed arrays, and jit keys on commitment, so a loaded graph would
    # compile every function again instead of sharing the compiled code of graphs with the same spec
    conv = lambda d: {v: {k: jnp.asarray(np.asarray(a)) for k, a in arrays.items()} for v, arrays in (d or {}).items()}
    graph = Graph(spec, conv(tree.get("params")), conv(tree.get("state")))
    from ._validate import validate_graph

    validate_graph(graph)
    return graph
