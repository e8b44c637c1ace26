"""Weight remapping: apply per-vertex neuron selections to every parameter and state array."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from .._errors import GraphError
from .._random import host_rng
from ._graph import Graph
from ._ops import ABSORB, IMMUTABLE, ParamAxes
from ._provenance import Ops, derive
from ._spec import GraphSpec

UTILITY = "utility"
EPS = float(np.finfo(np.float32).eps)
_UTILITY_AXES = ParamAxes(out=0, new=EPS)


def default_key(key: jax.Array | None) -> jax.Array:
    """The key surgery draws new weights from: ``key``, or ``jax.random.key(0)`` when None (reproducible)."""
    return jax.random.key(0) if key is None else key


def _is_identity(sel: np.ndarray, n: int) -> bool:
    return sel.shape == (n,) and bool(np.all(sel == np.arange(n)))


def changed_selections(spec: GraphSpec, selection: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The selections that change something, as int64 arrays, checked against the spec's sizes."""
    out = {}
    for name, sel in selection.items():
        n = spec.nout(name)
        sel = np.asarray(sel, np.int64).reshape(-1)
        if sel.size < 1 or np.any(sel >= n) or np.any(sel < -1):
            raise GraphError(
                f"selection for vertex {name!r} must hold indices in [0, {n}) or -1 (new neuron), "
                f"at least one entry; got {sel.tolist()}"
            )
        kept = sel[sel >= 0]
        if np.any(np.diff(kept) <= 0):
            raise GraphError(f"selection for vertex {name!r}: kept indices must be increasing, got {sel.tolist()}")
        if not _is_identity(sel, n):
            if not spec.is_mutable(name):
                raise GraphError(f"vertex {name!r} is immutable (an input or a flatten): its neurons cannot change")
            out[name] = sel
    return out


def input_selection(spec: GraphSpec, name: str, sels: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The selection of ``name``'s input neurons (its inputs' outputs, concatenated), or None if unchanged."""
    ins = spec[name].inputs
    if not any(i in sels for i in ins):
        return None
    parts, offset = [], 0
    for i in ins:
        n = spec.nout(i)
        sel = sels.get(i, np.arange(n))
        parts.append(np.where(sel < 0, -1, sel + offset))
        offset += n
    return np.concatenate(parts)


def take(arr: Any, sel: np.ndarray, axis: int, fill: str | float, rng: np.random.Generator | None) -> np.ndarray:
    """``arr`` indexed by ``sel`` along ``axis``; ``-1`` entries get ``fill``.

    ``fill``: a constant, ``"fanin"`` (normal / fan-in of one new slice) or ``"block"`` (normal / size of all new
    entries, NaiveNASflux's ``randoutzeroin``).
    """
    arr = np.asarray(arr)
    axis %= arr.ndim
    new = sel < 0
    out = np.take(arr, np.where(new, 0, sel), axis=axis)
    if new.any():
        index: list[Any] = [slice(None)] * arr.ndim
        index[axis] = np.flatnonzero(new)
        shape = list(out.shape)
        shape[axis] = int(new.sum())
        if fill not in ("fanin", "block"):
            values = float(fill)
        elif rng is None:
            raise ValueError(f"take: fill={fill!r} draws random values, so rng must be a numpy Generator, got None")
        elif fill == "fanin":
            fan_in = math.prod(shape) // shape[axis]
            values = rng.standard_normal(shape) / max(fan_in, 1)
        else:
            values = rng.standard_normal(shape) / math.prod(shape)
        out[tuple(index)] = values
    return out.astype(arr.dtype, copy=False)


def _remap_arrays(arrays, axes_of, out_sel, in_sel, rng_fn, name: str, what: str, ops_out=None):
    """``arrays`` re-indexed; ``ops_out`` (if given) receives each changed array's index maps, for ``derive``."""
    result = {}
    for pname, arr in arrays.items():
        axes = axes_of.get(pname)
        if axes is None:
            if out_sel is not None or in_sel is not None:
                raise GraphError(f"vertex {name!r}: {what} {pname!r} has no declared neuron axes; cannot resize it")
            result[pname] = arr
            continue
        changed = np.asarray(arr)
        ops = []
        if in_sel is not None and axes.inp is not None:
            changed = take(changed, in_sel, axes.inp, 0.0, None)
            ops.append((axes.inp % changed.ndim, in_sel))
        if out_sel is not None and axes.out is not None:
            changed = take(changed, out_sel, axes.out, axes.new, rng_fn())
            ops.append((axes.out % changed.ndim, out_sel))
        touched = bool(ops)
        if touched and ops_out is not None:
            ops_out[pname] = tuple(ops)
        # device_put, not jnp.asarray: asarray compiles a conversion per new array shape (~40 ms each on CPU).
        result[pname] = jax.device_put(changed) if touched else arr
    return result


def apply_selection(
    graph: Graph,
    selection: Mapping[str, Any],
    *,
    key: jax.Array | None = None,
) -> Graph:
    """A new graph with every vertex's output neurons re-indexed by ``selection`` (name -> indices, -1 = new).

    Kept neurons keep their weights in the producing vertex's output axis and in every consumer's input axis
    (through concat offsets). A new neuron gets small random fan-in (normal / fan-in, drawn from ``key`` folded
    with the vertex name; ``key=None`` means ``jax.random.key(0)``), zero fan-out, zero bias; batch-norm entries get
    neutral statistics and other per-neuron arrays their op's ``ParamAxes.new`` fill; a stored activation
    utility gets ``eps(float32)``. The selections must be consistent: tied vertices (adds, batch-norms, concats)
    need matching selections, which is what ``neuron_selection`` returns. The input graph is not modified.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> g2 = ng.graph.apply_selection(g, {"d1": [0, 2, -1]})
        >>> g2.nout("d1"), g2.params["d2"]["kernel"][2].tolist()
        (3, [0.0, 0.0])
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"apply_selection: graph must be an ng.Graph, got {type(graph).__name__}")
    return remap(graph, selection, key=key)


def remap(
    graph: Graph,
    selection: Mapping[str, Any],
    *,
    key: jax.Array | None,
    rewire: Mapping[str, tuple[str, ...] | None] | None = None,
    outputs: tuple[str, ...] | None = None,
) -> Graph:
    """``apply_selection`` plus structural edits made at the same time.

    Selections index the OLD graph's neurons; ``rewire`` maps vertex names to new input tuples (None removes the
    vertex); ``outputs`` replaces the graph outputs. Vertices no output depends on any more are dropped.
    """
    spec = graph.spec
    sels = changed_selections(spec, selection)
    rewire = dict(rewire or {})
    if not sels and not rewire and outputs is None:
        return graph
    key = default_key(key)
    ops = {}
    transformed: dict[tuple[str, str], Any] = {}
    params, state = dict(graph.params), dict(graph.state)
    for v in spec.vertices:
        out_sel = sels.get(v.name)
        in_sel = input_selection(spec, v.name, sels) if v.op.trait == ABSORB else None
        if out_sel is None and in_sel is None:
            continue
        if out_sel is not None and v.op.trait == ABSORB:
            if not hasattr(v.op, "nout"):
                raise GraphError(f"vertex {v.name!r}: {type(v.op).__name__} has no nout field; cannot resize it")
            ops[v.name] = v.op.replace(nout=len(out_sel))
        rng_fn = _lazy_rng(key, v.name)
        if v.name in params:
            index_maps: dict[str, Ops] = {}
            arrays = _remap_arrays(
                params[v.name], v.op.param_axes(), out_sel, in_sel, rng_fn, v.name, "param", index_maps
            )
            params[v.name] = arrays
            for pname, pops in index_maps.items():
                transformed[(v.name, pname)] = (graph, (v.name, pname), pops)
        if v.name in state:
            axes = {**v.op.state_axes(), UTILITY: _UTILITY_AXES}
            state[v.name] = _remap_arrays(state[v.name], axes, out_sel, in_sel, rng_fn, v.name, "state")
    entries: dict[str, Any] = {}
    for name in {*ops, *rewire}:
        if name in rewire and rewire[name] is None:
            entries[name] = None
        else:
            entries[name] = (ops.get(name, spec[name].op), rewire.get(name, spec[name].inputs))
    new_spec = spec.replace_entries(entries, outputs=outputs) if entries or outputs is not None else spec
    if new_spec is not spec:
        for v in new_spec.vertices:
            if v.op.trait == IMMUTABLE and v.name in spec and spec[v.name].shape != v.shape:
                raise GraphError(
                    f"vertex {v.name!r} ({type(v.op).__name__}) is immutable: its shape {spec[v.name].shape} "
                    f"cannot become {v.shape}"
                )
        params = {k: a for k, a in params.items() if k in new_spec}
        state = {k: a for k, a in state.items() if k in new_spec}
    return derive(Graph(new_spec, params, state), [graph], transformed)


def _lazy_rng(key: jax.Array, name: str):
    cache: list[np.random.Generator] = []

    def get() -> np.random.Generator:
        if not cache:
            cache.append(host_rng(key, "new-neurons", name))
        return cache[0]

    return get
