"""Where a graph's parameter arrays came from, so that state shaped like the parameters can follow surgery.

Surgery keeps trained neurons and adds new ones; anything else a user keeps per parameter (Adam's moments, an EMA of
the weights, a pruning mask) must follow the same neuron selection, or it no longer lines up with the weights it
belongs to. Every surgery records, on the graph it returns, how each of its parameter arrays was made from its
input graph's arrays: which array (by vertex and parameter name: a crossover can rename a vertex) and which index
maps along which axes (``-1`` = a new entry). Records compose: a graph made by three surgeries in a row knows its
arrays' history back through all three. ``remap_like`` replays that history on any pytree shaped like the old
graph's params.

The record lives on the ``Graph`` object, outside the pytree: it survives ``graph.replace(spec=...)`` or
``replace(state=...)`` (the parameters did not change), and it is dropped by everything that makes new parameter
arrays (training, ``jax.jit``, pickling, saving): such a graph starts a new history. A history holds index maps,
never weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np

from .._errors import GraphError

_ATTR = "_ng_provenance"

Key = tuple[str, str]  # (vertex, parameter name)
Ops = tuple[tuple[int, np.ndarray], ...]  # (axis, index map with -1 for new entries), applied in order


class _Record:
    """A graph's parameter arrays: an identity, and for each array the record and array it was made from."""

    __slots__ = ("links",)

    def __init__(self, links: Mapping[Key, tuple[_Record, Key, Ops]]):
        # Records link to records, never to graphs: a history keeps index maps alive, not weights.
        self.links = links


def _record(graph: Any) -> _Record:
    rec = graph.__dict__.get(_ATTR)
    if rec is None:
        rec = _Record({})
        object.__setattr__(graph, _ATTR, rec)
    return rec


def share(new: Any, old: Any) -> Any:
    """``new`` has exactly ``old``'s parameter arrays: it gets ``old``'s identity and history. Returns ``new``."""
    object.__setattr__(new, _ATTR, _record(old))
    return new


def derive(new: Any, parents: Iterable[Any], transformed: Mapping[Key, tuple[Any, Key, Ops]] | None = None) -> Any:
    """Records on ``new`` how its parameter arrays came from ``parents``'s. Returns ``new``.

    ``transformed`` maps a parameter of ``new`` to ``(parent, source, ops)``: it is ``parent``'s array ``source``
    indexed by ``ops``. Any other parameter array of ``new`` that *is* (the same object as) an array of a parent
    came from it unchanged, under whatever name it has now; the rest are new.
    """
    by_id: dict[int, tuple[Any, Key]] = {}
    for parent in parents:
        for v, arrays in parent.params.items():
            for p, arr in arrays.items():
                by_id.setdefault(id(arr), (parent, (v, p)))
    transformed = dict(transformed or {})
    links: dict[Key, tuple[_Record, Key, Ops]] = {}
    for v, arrays in new.params.items():
        for p, arr in arrays.items():
            if (v, p) in transformed:
                parent, source, ops = transformed[(v, p)]
            elif id(arr) in by_id:
                (parent, source), ops = by_id[id(arr)], ()
            else:
                continue
            links[(v, p)] = (_record(parent), source, tuple(ops))
    object.__setattr__(new, _ATTR, _Record(links))
    return new


def _history(new: _Record, old: _Record, key: Key) -> tuple[Key, list[Ops]] | None:
    """The array of ``old`` that ``new``'s array ``key`` was made from, and the index maps, oldest first."""
    rec, chain = new, []
    while rec is not old:
        link = rec.links.get(key)
        if link is None:
            return None
        rec, key, ops = link
        chain.append(ops)
    return key, chain[::-1]


def _take_zero(arr: np.ndarray, sel: np.ndarray, axis: int) -> np.ndarray:
    out = np.take(arr, np.where(sel < 0, 0, sel), axis=axis)
    if np.any(sel < 0):
        index: list[Any] = [slice(None)] * out.ndim
        index[axis] = np.flatnonzero(sel < 0)
        out[tuple(index)] = 0
    return out


def _check_like(old_graph: Any, tree: Any, where: str) -> None:
    if not isinstance(tree, Mapping) or set(tree) != set(old_graph.params):
        got = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
        raise ValueError(
            f"{where}: tree must be shaped like old_graph.params (a dict by vertex name: "
            f"{sorted(old_graph.params)}), got {got}"
        )
    for v, arrays in old_graph.params.items():
        sub = tree[v]
        if not isinstance(sub, Mapping) or set(sub) != set(arrays):
            got = sorted(sub) if isinstance(sub, Mapping) else type(sub).__name__
            raise ValueError(f"{where}: tree[{v!r}] must hold the parameters {sorted(arrays)}, got {got}")
        for p, arr in arrays.items():
            if np.shape(sub[p]) != np.shape(arr):
                raise ValueError(
                    f"{where}: tree[{v!r}][{p!r}] has shape {np.shape(sub[p])}, but old_graph's parameter has "
                    f"{np.shape(arr)}"
                )


def remap_like(old_graph: Any, new_graph: Any, tree: Any) -> Any:
    """Maps ``tree``, shaped like ``old_graph.params``, onto ``new_graph.params``'s shapes, neuron for neuron.

    ``new_graph`` must have been made from ``old_graph`` by surgery in this process (``ng.delta_nout``, ``prune``,
    ``insert_vertex``, ``remove_vertex``, ``add_edge``, ``remove_edge``, ``resize_kernel``, crossover, any
    mutation, or a chain of them): each surgery records which neurons it kept and where it put new ones, and the
    same selection is applied to ``tree``. Kept neurons and kernel taps keep their values; new ones, and the
    parameters of new vertices, get zeros. Use it for anything kept per parameter: an optimiser's moments (see
    ``remap_opt_state`` for a whole optax state), an exponential moving average of the weights, masks.

    A graph that shares ``old_graph``'s parameter arrays (``old_graph.replace(spec=...)``) or has its spec (the
    same shapes: a trained copy, say) takes ``tree`` as it is. Anything else raises ``ValueError``: the history
    is kept in memory on the graph objects and is not saved with a graph.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> ones = jax.tree_util.tree_map(jnp.ones_like, g.params)
        >>> g2 = ng.delta_nout(g, {"d1": +2})
        >>> mu = ng.remap_like(g, g2, ones)
        >>> mu["d1"]["kernel"].shape, mu["d1"]["kernel"][0].tolist(), mu["d2"]["kernel"][:, 0].tolist()
        ((3, 6), [1.0, 1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    """
    where = "remap_like"
    from ._graph import Graph

    for name, g in (("old_graph", old_graph), ("new_graph", new_graph)):
        if not isinstance(g, Graph):
            raise TypeError(f"{where}: {name} must be an ng.Graph, got {type(g).__name__}")
    _check_like(old_graph, tree, where)
    old, new = _record(old_graph), _record(new_graph)
    if new is old:
        return tree
    histories = {(v, p): _history(new, old, (v, p)) for v, arrays in new_graph.params.items() for p in arrays}
    if all(h is None for h in histories.values()):
        if new_graph.spec == old_graph.spec:
            return tree
        raise ValueError(
            f"{where}: new_graph was not made from old_graph by surgery in this process (no record of its "
            f"parameters leads back to old_graph, and the specs differ); pass the graph the surgery started from"
        )
    dtype = np.asarray(next(iter(jax.tree_util.tree_leaves(tree)), np.float32(0))).dtype
    out: dict[str, dict[str, Any]] = {}
    for v, arrays in new_graph.params.items():
        out[v] = {}
        for p, arr in arrays.items():
            history = histories[(v, p)]
            if history is None:
                out[v][p] = jax.device_put(np.zeros(np.shape(arr), dtype))
                continue
            (src_v, src_p), chain = history
            value = np.asarray(tree[src_v][src_p])
            for ops in chain:
                for axis, sel in ops:
                    value = _take_zero(value, sel, axis)
            if value.shape != np.shape(arr):
                raise GraphError(
                    f"{where}: replaying the surgery on {v}/{p} gave shape {value.shape}, expected {np.shape(arr)}"
                )
            out[v][p] = jax.device_put(value)
    return out


def remap_opt_state(old_graph: Any, new_graph: Any, opt_state: Any) -> Any:
    """An optax state for ``old_graph.params`` mapped onto ``new_graph.params`` with ``remap_like``.

    Every part of ``opt_state`` shaped like ``old_graph.params`` (Adam's ``mu`` and ``nu``, momentum traces,
    AdaGrad's sums) is remapped, new neurons getting zeros; the rest (step counts, injected hyperparameters) is kept.
    A state made for the graph itself, or for ``ng.partition``'s trainable half (``optax.adam(1e-3).init(trainable)``),
    holds graphs of ``old_graph``'s spec: they become graphs of ``new_graph``'s spec, their parameters remapped.

    Example:
        >>> import jax, jax.numpy as jnp, optax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> state = optax.adam(1e-3).init(g.params)
        >>> g2 = ng.delta_nout(g, {"d1": -1})
        >>> new = ng.remap_opt_state(g, g2, state)
        >>> new[0].mu["d1"]["kernel"].shape, int(new[0].count)
        ((3, 3), 0)
    """
    params_def = jax.tree_util.tree_structure(old_graph.params)
    shapes = [np.shape(a) for a in jax.tree_util.tree_leaves(old_graph.params)]

    def like_params(node: Any) -> bool:
        if not isinstance(node, Mapping):
            return False
        try:
            leaves, treedef = jax.tree_util.tree_flatten(node)
        except Exception:  # anything that does not flatten is not params-shaped
            return False
        # jaxlib ships no type stub for PyTreeDef, so the checker cannot see its __eq__
        same_structure = treedef == params_def  # type: ignore[operator]
        return same_structure and [np.shape(a) for a in leaves] == shapes

    from ._graph import Graph

    def like_graph(node: Any) -> bool:
        return isinstance(node, Graph) and node.spec == old_graph.spec

    def remap(node: Any) -> Any:
        if like_params(node):
            return remap_like(old_graph, new_graph, node)
        # A state made for a whole graph or for ng.partition's halves (optax.adam().init(trainable)): the same
        # graph with new_graph's spec; parameters remapped, None halves stay None, other state arrays start at 0.
        params = (
            _none_like(new_graph.params) if _all_none(node.params) else remap_like(old_graph, new_graph, node.params)
        )
        if _all_none(node.state):
            state = _none_like(new_graph.state)
        else:
            state = jax.tree_util.tree_map(
                lambda a: jax.device_put(np.zeros(np.shape(a), np.asarray(a).dtype)), new_graph.state
            )
        return Graph(new_graph.spec, params, state)

    return jax.tree_util.tree_map(
        lambda node: remap(node) if like_params(node) or like_graph(node) else node,
        opt_state,
        is_leaf=lambda node: like_params(node) or like_graph(node),
    )


def _all_none(tree: Any) -> bool:
    return all(leaf is None for leaf in jax.tree_util.tree_leaves(tree, is_leaf=lambda x: x is None))


def _none_like(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda _: None, tree)
