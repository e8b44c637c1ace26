"""Graph specs as JSON; whole graphs saved atomically (orbax for arrays, JSON for the spec)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._errors import GraphError, NaiveGAError
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
        raise GraphError(
            f"unknown op type {name!r} in graph JSON; known: {sorted(OPS)} (ng.graph.register_op adds more)"
        )
    return cls(**{k: _tuples(v) for k, v in data.items()})


def to_json(spec: GraphSpec | Graph, **dumps_kwargs: Any) -> str:
    """The spec as a JSON string (a graph's spec if given a graph).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.graph.from_json(ng.to_json(g.spec)) == g.spec
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
        >>> spec = ng.graph.from_json('{"inputs": ["in"], "outputs": ["in"], "vertices": '
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


class OverwriteError(NaiveGAError, FileExistsError):
    """A save refused to replace what is at its path (it replaces only an empty directory or its own kind of output).

    Example:
        >>> import jax, pathlib, tempfile, naivega_jax as ng
        >>> notes = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> _ = notes.write_text("mine")
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> try:
        ...     ng.save_graph(notes, g)
        ... except ng.OverwriteError as e:
        ...     print(isinstance(e, FileExistsError), notes.read_text())
        True mine
    """


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A kind of directory a save writes: a JSON ``document`` naming one of ``formats``, beside an ``arrays/`` folder.

    A directory holding exactly these two entries is taken for this kind even if its document no longer parses
    (the damaged output of an earlier save is still ours to replace).
    """

    what: str
    document: str
    formats: tuple[str, ...]

    def holds(self, path: Path) -> bool:
        if path.is_symlink() or not path.is_dir():
            return False
        with os.scandir(path) as it:
            entries = {e.name: e for e in it}
        if set(entries) != {self.document, "arrays"}:
            return False
        if not entries[self.document].is_file(follow_symlinks=False):
            return False
        if not entries["arrays"].is_dir(follow_symlinks=False):
            return False
        try:
            data = json.loads(Path(entries[self.document].path).read_text())
        except ValueError:  # UnicodeDecodeError included
            return True
        except OSError:
            return False
        return isinstance(data, dict) and data.get("format") in self.formats


SAVED_GRAPH = Artifact("a saved graph (spec.json and arrays/)", "spec.json", (FORMAT,))


def describe_path(path: Path) -> str:
    """What is at ``path``, in words, for error messages."""
    if path.is_symlink():
        return f"a symbolic link to {os.readlink(path)!r}"
    if path.is_dir():
        with os.scandir(path) as it:
            names = sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in it)
        if not names:
            return "an empty directory"
        more = f", ... ({len(names)} entries)" if len(names) > 5 else ""
        return f"a directory holding {', '.join(names[:5])}{more}"
    if path.is_file():
        return f"a file of {path.stat().st_size} bytes"
    return "something that is neither a file nor a directory"


def check_replaceable(path: Path, artifact: Artifact, where: str, *, overwrite: bool = True) -> None:
    """Raises ``OverwriteError`` unless a save of ``artifact`` may write ``path``.

    Allowed: nothing there, an empty directory, and (when ``overwrite``) an earlier save of the same kind. Anything
    else (a file, a symbolic link, any other directory) belongs to someone else and is never replaced.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    if not path.is_symlink() and path.is_dir():
        with os.scandir(path) as it:
            if next(it, None) is None:
                return
    if artifact.holds(path):
        if overwrite:
            return
        raise OverwriteError(
            f"{where}: {str(path)!r} is already {artifact.what}; pass overwrite=True (naivega export --force) "
            "to replace it"
        )
    raise OverwriteError(
        f"{where}: refusing to replace {str(path)!r}: it is {describe_path(path)}; expected {artifact.what}, "
        "an empty directory or a path that does not exist"
    )


def atomic_directory(path: str | os.PathLike, write, *, replaces: Callable[[Path], None]) -> Path:
    """Runs ``write(tmp_dir)`` then moves ``tmp_dir`` to ``path`` so readers never see a half-written directory.

    An existing ``path`` is replaced only after the new one is complete, and only if ``replaces(path)`` allows it:
    it raises if what is at ``path`` must not be replaced, and runs before any work and again just before the move.
    There is no default: every caller says what it may replace (``check_replaceable`` for a kind of artifact).
    """
    path = Path(path)
    replaces(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = None
    try:
        write(tmp)
        replaces(path)  # something may have appeared there while we wrote
        if os.path.lexists(path):
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


def save_graph(path: str | os.PathLike, graph: Graph, *, overwrite: bool = True) -> Path:
    """Saves ``graph`` to the directory ``path`` (``spec.json`` plus orbax ``arrays/``), atomically.

    Args:
        path: a new path, an empty directory, or (when ``overwrite``) a graph saved earlier. Anything else there (a
            file, a run directory, a directory with other contents, a symbolic link) raises ``OverwriteError``
            before anything is written.
        graph: the graph to save.
        overwrite: whether a graph saved earlier at ``path`` is replaced (once the new one is complete).

    Example:
        >>> import jax, tempfile, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> d = tempfile.mkdtemp()
        >>> ng.load_graph(ng.save_graph(d + "/g", g)).spec == g.spec
        True
        >>> try:
        ...     ng.save_graph(d + "/g", g, overwrite=False)
        ... except ng.OverwriteError as e:
        ...     print("overwrite=True" in str(e))
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"save_graph: graph must be an ng.Graph, got {type(graph).__name__}")

    def write(tmp: Path) -> None:
        (tmp / "spec.json").write_text(to_json(graph.spec, indent=1))
        save_arrays(tmp / "arrays", {"params": graph.params, "state": graph.state})

    def replaces(p: Path) -> None:
        check_replaceable(p, SAVED_GRAPH, "save_graph", overwrite=overwrite)

    return atomic_directory(path, write, replaces=replaces)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _read_spec(spec_file: Path) -> GraphSpec:
    try:
        data = json.loads(spec_file.read_text())
    except (OSError, ValueError) as e:
        raise GraphError(f"load_graph: {str(spec_file)!r} is not readable JSON ({_first_line(e)})") from None
    if not isinstance(data, dict):
        raise GraphError(f"load_graph: {str(spec_file)!r} holds a {type(data).__name__}, expected a JSON object")
    # every spec.json save_graph ever wrote names its format
    if data.get("format") != FORMAT:
        raise GraphError(
            f"load_graph: {str(spec_file)!r} has format {data.get('format')!r}, expected {FORMAT!r} "
            "(a graph written by ng.save_graph)"
        )
    try:
        return from_json(data)
    except GraphError as e:
        raise GraphError(f"load_graph: {str(spec_file)!r}: {e}") from None


def _host_arrays(tree: Any, group: str, where: str) -> dict[str, dict[str, Any]]:
    # numpy arrays, held in a Graph only to validate them against the spec before they go to the device
    tree = {} if tree is None else tree
    if not isinstance(tree, dict) or not all(isinstance(v, dict) for v in tree.values()):
        raise GraphError(f"{where}: {group} should map vertex names to dicts of arrays, got {type(tree).__name__}")
    return {v: {k: np.asarray(a) for k, a in arrays.items()} for v, arrays in tree.items()}


def load_graph(path: str | os.PathLike) -> Graph:
    """Loads a graph written by ``save_graph``; raises ``GraphError`` if its arrays do not fit its spec.

    The arrays are checked against the spec before anything the size of the spec is created, so an edited or
    damaged ``spec.json`` fails with one message naming the vertex.

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
    spec = _read_spec(spec_file)
    try:
        tree = load_arrays(path / "arrays")
    except Exception as e:  # orbax raises many types (and long messages) for a missing or damaged directory
        raise GraphError(f"load_graph: the arrays of {str(path)!r} are unreadable ({_first_line(e)})") from None
    if not isinstance(tree, dict):
        raise GraphError(f"load_graph: the arrays of {str(path)!r} hold a {type(tree).__name__}, expected a dict")
    where = f"load_graph {str(path)!r}"
    host = Graph(
        spec, _host_arrays(tree.get("params"), "params", where), _host_arrays(tree.get("state"), "state", where)
    )
    from ._validate import validate_graph

    try:
        validate_graph(host)
    except GraphError as e:
        raise GraphError(f"load_graph: the arrays of {str(path)!r} do not fit its spec: {e}") from None
    # via numpy: orbax restores device-committed arrays, and jit keys on commitment, so a loaded graph would
    # compile every function again instead of sharing the compiled code of graphs with the same spec
    conv = lambda d: {v: {k: jnp.asarray(a) for k, a in arrays.items()} for v, arrays in d.items()}
    return Graph(spec, conv(host.params), conv(host.state))
