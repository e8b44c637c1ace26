"""Surgery: change widths and structure of a graph while keeping its trained weights.

Every function returns a new, validated graph and never modifies its input. New neurons and kernel taps draw their
small random fan-in from ``key``; ``key=None`` means ``jax.random.key(0)``, and each vertex folds in its own name,
so a call is reproducible. Graph outputs keep their size (the model's output shape never changes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from .._errors import GraphError, SizeChangeError
from .._random import host_rng
from ._graph import Graph, init_vertex
from ._ops import ABSORB, IMMUTABLE, INVARIANT, STACK, Conv, Op, _explicit_pads
from ._provenance import derive
from ._remap import EPS, UTILITY, default_key, remap, take
from ._sizes import DROP, NEW, SizeNode, SizeStructure, nodes_of, structure_nodes
from ._solver import DEFAULT_TIME_LIMIT, SizeRequest, _Infeasible, solve_selection
from ._utility import default_utility

Utility = Callable[[Graph, str], Any]


def _utility_fn(graph: Graph, utility: Utility | None):
    fn = default_utility if utility is None else utility
    if not callable(fn):
        raise TypeError(f"utility must be a function (graph, name) -> per-neuron values, got {utility!r}")
    return lambda name: fn(graph, name)


def _check_graph(graph: Any, where: str) -> Graph:
    if not isinstance(graph, Graph):
        raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
    return graph


def _check_deltas(graph: Graph, deltas: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(deltas, Mapping):
        raise TypeError(f"deltas must be a mapping vertex name -> int change of nout, got {deltas!r}")
    out = {}
    for name, delta in deltas.items():
        graph.spec.index(name)
        if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)):
            raise TypeError(f"deltas[{name!r}] must be an int change of nout, got {delta!r}")
        out[name] = int(delta)
    return out


def neuron_selection(
    graph: Graph,
    deltas: Mapping[str, int],
    *,
    utility: Utility | None = None,
    relaxed: bool = False,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> dict[str, np.ndarray]:
    """The neurons every touched vertex keeps when the nout of ``deltas``' vertices change (one problem).

    Returns ``{name: indices}`` for every vertex of the solved components (NaiveNASlib's ``Δsize!`` result): the
    kept output-neuron indices in order, ``-1`` where a new neuron goes. Apply it with ``ng.graph.apply_selection``.
    ``utility(graph, name)`` gives per-neuron values (default ``ng.graph.default_utility``); neurons of negative utility
    are dropped where the sizes allow. With ``relaxed=True`` the deltas are soft targets (the size must still
    change); otherwise an infeasible change raises ``SizeChangeError``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(5), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> prefer_high = lambda graph, name: list(range(1, graph.nout(name) + 1))
        >>> ng.graph.neuron_selection(g, {"d1": -2}, utility=prefer_high)["d1"].tolist()
        [2, 3, 4]
    """
    _check_graph(graph, "neuron_selection")
    deltas = _check_deltas(graph, deltas)
    targets = {name: graph.nout(name) + d for name, d in deltas.items()}
    request = SizeRequest(relaxed=targets) if relaxed else SizeRequest(exact=targets)
    structure = SizeStructure.from_spec(graph.spec)
    try:
        return solve_selection(structure, request, _utility_fn(graph, utility), time_limit)
    except _Infeasible:
        raise SizeChangeError(_infeasible_message(graph, structure, deltas, relaxed)) from None


def _infeasible_message(graph: Graph, structure: SizeStructure, deltas: dict[str, int], relaxed: bool) -> str:
    pinned = structure.pinned_closure()
    parts = []
    for name, d in deltas.items():
        gid = structure.group_of[name]
        tied = structure.groups[gid].members
        why = "its size is fixed (tied to an input, a flatten or a graph output)" if gid in pinned else ""
        if not why and structure.groups[gid].defs:
            why = "it is a concatenation whose parts cannot add up to that size"
        if not why and any(gid in d for g in structure.groups for d in g.defs):
            why = "it is part of a concatenation whose other constraints forbid that size"
        parts.append(f"{name!r} by {d:+d} to {graph.nout(name) + d} (tied vertices {tied}{'; ' + why if why else ''})")
    hint = "" if relaxed else "; pass relaxed=True to get the nearest feasible size instead"
    kind = "relaxed" if relaxed else "exact"
    return f"no {kind} size change satisfies every constraint: changing nout of {', '.join(parts)}{hint}"


def delta_nout(
    graph: Graph,
    deltas: Mapping[str, int],
    *,
    utility: Utility | None = None,
    relaxed: bool = False,
    key: jax.Array | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Graph:
    """Changes the number of output neurons of vertices by ``deltas`` (name -> int), solved as ONE problem.

    Every vertex tied to a changed one (through adds, batch-norms, concatenations) follows, and every consumer's
    input weights are re-indexed: kept neurons keep their weights, new ones get small random fan-in and zero
    fan-out (the graph computes the same after a pure increase). Which neurons go is decided by ``utility``
    (default ``ng.graph.default_utility``). Exact by default: raises ``SizeChangeError`` when no consistent sizes exist
    (for example an odd change of a concat of two copies); ``relaxed=True`` takes the nearest feasible change.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> g2 = ng.delta_nout(g, {"d1": +2})
        >>> g2.nout("d1"), bool(jnp.allclose(g2(jnp.ones((1, 3))), g(jnp.ones((1, 3))), atol=1e-5))
        (6, True)
    """
    sels = neuron_selection(graph, deltas, utility=utility, relaxed=relaxed, time_limit=time_limit)
    return remap(graph, sels, key=key)


def prune(
    graph: Graph,
    *,
    utility: Utility | None = None,
    key: jax.Array | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Graph:
    """Drops the neurons of negative utility everywhere sizes allow, adding none (NaiveNASlib ``Δsize!(g)``).

    Tied vertices keep equal sizes, concatenations stay consistent, graph outputs and inputs are untouched, and a
    vertex keeps at least one neuron.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> u = lambda graph, name: [1.0, -1.0, 2.0, -3.0] if name == "d1" else [1.0] * graph.nout(name)
        >>> ng.prune(g, utility=u).nout("d1")
        2
    """
    _check_graph(graph, "prune")
    structure = SizeStructure.from_spec(graph.spec)
    request = SizeRequest(prune_all=True, no_insert=True)
    try:
        sels = solve_selection(structure, request, _utility_fn(graph, utility), time_limit)
    except _Infeasible as e:
        raise SizeChangeError(f"prune: no consistent selection of neurons exists ({e})") from None
    return remap(graph, sels, key=key)


def _solve_first(graph, structure, requests, utility, time_limit):
    """The selection of the first feasible request (the strategy chain of a structural change), or None."""
    fn = _utility_fn(graph, utility)
    for request in requests:
        try:
            return solve_selection(structure, request, fn, time_limit)
        except (_Infeasible, SizeChangeError):
            continue
    return None


def _check_size_cycle(spec, changes, what: str) -> None:
    nodes = structure_nodes(spec, changes)
    cycle = SizeStructure(nodes).find_cycle()
    if cycle:
        raise SizeChangeError(
            f"{what} would create a size cycle among {cycle}: a concatenation would be tied to one of its own "
            "inputs, so its size would have to equal itself plus its other inputs (nout(a) == nout(a) + nout(b))"
        )


def _with_utility_state(graph: Graph, spec, state: dict, name: str) -> dict:
    if any(UTILITY in entry for entry in graph.state.values()) and spec[name].op.trait != IMMUTABLE:
        state = dict(state)
        state[name] = {**state.get(name, {}), UTILITY: jax.device_put(np.full((spec.nout(name),), EPS, np.float32))}
    return state


def insert_vertex(
    graph: Graph,
    after: str,
    op: Op,
    name: str,
    *,
    outputs: Sequence[str] | Callable[[tuple[str, ...]], Sequence[str]] | None = None,
    weight_init: Any = "identity",
    key: jax.Array | None = None,
) -> Graph:
    """Inserts a new vertex ``name`` computing ``op`` on ``after``'s output, and rewires consumers to it.

    ``outputs`` selects which consumers of ``after`` read the new vertex instead (names, or a function of the
    tuple of consumer names; default all of them, and the graph output if ``after`` is one). No size changes: an
    absorbing op (Dense, Conv) must have ``nout == nout(after)``. ``weight_init="identity"`` (default) makes the
    new vertex's linear part the identity; the graph then computes exactly the same when the op's activation is the
    identity on the values it sees: always for ``"identity"``; for relu, elu and leaky_relu when ``after``'s outputs
    are non-negative (after a relu, say). Otherwise the activation changes the values it changes (a relu zeroes
    negative ones). A new BatchNorm (mean 0, variance 1) divides by ``sqrt(1 + eps)`` in inference and normalises
    by batch statistics in training; a Dropout is the identity in inference only.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> g2 = ng.insert_vertex(g, after="d1", op=ng.Dense(4), name="d1b")
        >>> g2.inputs("d2"), bool(jnp.allclose(g2(jnp.ones((1, 3))), g(jnp.ones((1, 3))), atol=1e-5))
        (('d1b',), True)
    """
    _check_graph(graph, "insert_vertex")
    spec = graph.spec
    spec.index(after)
    if not isinstance(name, str) or not name:
        raise GraphError(f"insert_vertex: name must be a non-empty string, got {name!r}")
    if name in spec:
        raise GraphError(f"insert_vertex: a vertex named {name!r} already exists; choose a new name")
    if not isinstance(op, Op):
        raise TypeError(f"insert_vertex: op must be an ng op (ng.Dense, ng.Conv, ...), got {op!r}")
    if op.trait == ABSORB and getattr(op, "nout", None) != spec.nout(after):
        raise SizeChangeError(
            f"insert_vertex: op {op!r} has nout {getattr(op, 'nout', None)} but must equal nout({after!r}) = "
            f"{spec.nout(after)} (insertion changes no sizes; resize afterwards with ng.delta_nout)"
        )
    consumers = spec.consumers(after)
    if outputs is None:
        selected, new_outputs = consumers, tuple(name if o == after else o for o in spec.outputs)
    else:
        selected = tuple(outputs(consumers) if callable(outputs) else outputs)
        for c in selected:
            if c not in consumers:
                raise GraphError(
                    f"insert_vertex: outputs={selected!r}: {c!r} is not a consumer of {after!r}; "
                    f"consumers: {list(consumers)}"
                )
        new_outputs = spec.outputs
    changes = {c: (spec[c].op, tuple(name if i == after else i for i in spec[c].inputs)) for c in selected}
    changes[name] = (op, (after,))
    new_spec = spec.replace_entries(changes, outputs=new_outputs)
    params, state = dict(graph.params), dict(graph.state)
    p, s = init_vertex(default_key(key), new_spec, name, weight_init)
    if p:
        params[name] = p
    if s:
        state[name] = s
    state = _with_utility_state(graph, new_spec, state, name)
    return derive(Graph(new_spec, params, state), [graph])


def _spliced(spec, name: str) -> dict[str, tuple[str, ...]]:
    ins = spec[name].inputs
    out = {}
    for c in spec.consumers(name):
        new: list[str] = []
        for i in spec[c].inputs:
            new.extend(ins if i == name else (i,))
        out[c] = tuple(new)
    return out


def remove_vertex(
    graph: Graph,
    name: str,
    *,
    utility: Utility | None = None,
    key: jax.Array | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Graph:
    """Removes vertex ``name``; its inputs take its place in each consumer's inputs (at the same position).

    When an absorbing vertex's input and output sizes differ, they are aligned first (NaiveNASlib's strategy
    chain): grow the smaller side exactly, else shrink the bigger side, else let both sides meet; neurons are
    chosen by ``utility``. Raises ``SizeChangeError`` when the removal would create a size cycle (a concat
    tied to its own part) or no alignment exists, and ``GraphError`` when a consumer cannot take the spliced inputs.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> v1 = ng.vertex("v1", ng.Dense(5), inp)
        >>> v2 = ng.vertex("v2", ng.Dense(4), v1)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("v3", ng.Dense(6), v2))
        >>> g2 = ng.remove_vertex(g, "v2")
        >>> g2.inputs("v3"), g2.nin("v3"), g2.nout("v1")
        (('v1',), (5,), 5)
    """
    _check_graph(graph, "remove_vertex")
    spec = graph.spec
    v = spec[name]
    if v.op.trait == IMMUTABLE:
        raise GraphError(f"remove_vertex: {name!r} is an input or another immutable vertex; it cannot be removed")
    if name in spec.outputs and len(v.inputs) != 1:
        raise GraphError(f"remove_vertex: graph output {name!r} has {len(v.inputs)} inputs; cannot replace it")
    rewire: dict[str, tuple[str, ...] | None] = {**_spliced(spec, name), name: None}
    for c, ins in rewire.items():
        if ins is None:
            continue
        op = spec[c].op
        if len(ins) < op.min_inputs or (op.max_inputs is not None and len(ins) > op.max_inputs):
            raise GraphError(
                f"remove_vertex: cannot remove {name!r}: its consumer {c!r} ({type(op).__name__}) would get "
                f"{len(ins)} inputs {list(ins)}"
            )
    _check_size_cycle(spec, rewire, f"removing vertex {name!r}")
    sels = {}
    if v.op.trait == ABSORB and spec.nin(name) != (v.nout,):
        (i,) = v.inputs
        nin, nout = spec.nout(i), v.nout
        grow = SizeRequest(exact={i: nout}) if nout > nin else SizeRequest(exact={name: nin})
        shrink = SizeRequest(exact={name: nin}) if nout > nin else SizeRequest(exact={i: nout})
        both = SizeRequest(equal=[(i, name)])
        sels = _solve_first(graph, SizeStructure.from_spec(spec), [grow, shrink, both], utility, time_limit)
        if sels is None:
            raise SizeChangeError(
                f"remove_vertex: cannot align the sizes around {name!r} (nin {nin}, nout {nout}): every strategy "
                "(grow the smaller side, shrink the bigger side, align both) is infeasible"
            )
    outputs = tuple(v.inputs[0] if o == name else o for o in spec.outputs)
    try:
        return remap(graph, sels, key=key, rewire=rewire, outputs=outputs)
    except GraphError as e:
        raise GraphError(f"remove_vertex: cannot remove {name!r}: {e}") from None


def add_edge(
    graph: Graph,
    src: str,
    dst: str,
    *,
    utility: Utility | None = None,
    key: jax.Array | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Graph:
    """Adds ``src`` as the last input of the multi-input vertex ``dst`` (a concat or an add).

    Into a concat: its output grows by ``nout(src)`` at the end, vertices tied to it grow alike with new neurons,
    consumers get zero input weights for the new part, so the graph computes the same. Into an add: ``src``'s and
    ``dst``'s sizes are aligned (both may change; neurons chosen by ``utility``). Raises ``SizeChangeError`` for a
    size cycle or infeasible sizes, ``GraphError`` when ``dst`` cannot take another input or the edge would
    make a cycle.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1, d2 = ng.vertex("d1", ng.Dense(4), inp), ng.vertex("d2", ng.Dense(5), inp)
        >>> head = ng.vertex("o", ng.Dense(2), ng.concat("k", ng.concat("c", d1), d2))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=head)
        >>> g2 = ng.add_edge(g, "d2", "c")
        >>> g2.nin("c"), bool(jnp.allclose(g2(jnp.ones((1, 3))), g(jnp.ones((1, 3))), atol=1e-5))
        ((4, 5), True)
    """
    _check_graph(graph, "add_edge")
    spec = graph.spec
    s, d = spec[src], spec[dst]
    op = d.op
    if (op.max_inputs is not None and len(d.inputs) >= op.max_inputs) or op.trait not in (STACK, INVARIANT):
        raise GraphError(
            f"add_edge: {dst!r} ({type(op).__name__}) cannot take another input; add edges into a concat or an add "
            "(insert one with ng.insert_vertex first)"
        )
    if src == dst or dst in spec.ancestors(src):
        raise GraphError(f"add_edge: an edge {src!r} -> {dst!r} would make the graph cyclic")
    new_inputs = (*d.inputs, src)
    _check_size_cycle(spec, {dst: new_inputs}, f"adding an edge {src!r} -> {dst!r}")
    if op.trait == STACK:
        pseudo = SizeNode(f"\0new:{dst}", NEW, (), 0, s.nout)
        nodes = [
            SizeNode(n.name, n.kind, (*n.inputs, pseudo.name) if n.name == dst else n.inputs, n.nout)
            for n in nodes_of(spec)
        ]
        structure = SizeStructure([*nodes, pseudo], (*spec.outputs, src))
        request = SizeRequest(touch=[dst])
    else:
        structure = SizeStructure.from_spec(spec)
        request = SizeRequest(equal=[(src, dst)])
    sels = _solve_first(graph, structure, [request], utility, time_limit)
    if sels is None:
        raise SizeChangeError(
            f"add_edge: no consistent sizes for an edge {src!r} (nout {s.nout}) -> {dst!r} (nout {d.nout}); "
            "the sizes involved are fixed (inputs, flattens, graph outputs) or concatenations cannot match"
        )
    return remap(graph, sels, key=key, rewire={dst: new_inputs})


def remove_edge(
    graph: Graph,
    src: str,
    dst: str,
    *,
    utility: Utility | None = None,
    key: jax.Array | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Graph:
    """Removes the edge ``src`` -> ``dst`` (the last one if ``src`` feeds ``dst`` several times).

    From a concat: its output loses ``src``'s part, and vertices tied to it drop the matching neurons. From an
    add: no size changes. A vertex no graph output depends on any more is dropped with its weights. Raises
    ``GraphError`` when ``dst`` would have too few inputs, ``SizeChangeError`` when the sizes cannot follow.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1, d2 = ng.vertex("d1", ng.Dense(4), inp), ng.vertex("d2", ng.Dense(5), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp,
        ...                    outputs=ng.vertex("o", ng.Dense(2), ng.concat("c", d1, d2, inp)))
        >>> ng.remove_edge(g, "d2", "c").nin("o")
        (7,)
    """
    _check_graph(graph, "remove_edge")
    spec = graph.spec
    spec.index(src)
    d = spec[dst]
    if src not in d.inputs:
        raise GraphError(f"remove_edge: {src!r} is not an input of {dst!r}; its inputs are {list(d.inputs)}")
    pos = len(d.inputs) - 1 - d.inputs[::-1].index(src)
    new_inputs = d.inputs[:pos] + d.inputs[pos + 1 :]
    if len(new_inputs) < d.op.min_inputs:
        raise GraphError(
            f"remove_edge: {dst!r} ({type(d.op).__name__}) needs at least {d.op.min_inputs} input(s); "
            f"removing {src!r} would leave {list(new_inputs)}"
        )
    _check_size_cycle(spec, {dst: new_inputs}, f"removing the edge {src!r} -> {dst!r}")
    sels = {}
    if d.op.trait == STACK:
        pseudo = SizeNode(f"\0drop:{dst}", DROP, (), spec.nout(src))
        nodes = [
            SizeNode(n.name, n.kind, (*n.inputs[:pos], pseudo.name, *n.inputs[pos + 1 :]), n.nout)
            if n.name == dst
            else n
            for n in nodes_of(spec)
        ]
        structure = SizeStructure([*nodes, pseudo], spec.outputs)
        sels = _solve_first(graph, structure, [SizeRequest(touch=[dst])], utility, time_limit)
        if sels is None:
            raise SizeChangeError(
                f"remove_edge: {dst!r} cannot lose the {spec.nout(src)} neurons of {src!r}: its size is fixed "
                "or tied to a concatenation that cannot follow"
            )
    elif d.op.trait != INVARIANT:
        raise GraphError(f"remove_edge: {dst!r} ({type(d.op).__name__}) is not a concat or an add")
    return remap(graph, sels, key=key, rewire={dst: new_inputs})


def _per_axis(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value,) * rank


def _kernel_positions(w: np.ndarray, axis: int, new: int) -> np.ndarray:
    """Which taps of ``axis`` stay (NaiveNASflux ``KernelSizeAligned``): central ones, -1 for new ones."""
    k = w.shape[axis]
    if new >= k:
        sel = -np.ones(new, np.int64)
        offset = (new - k) // 2
        sel[offset : offset + k] = np.arange(k)
        return sel
    mid = (k - 1) / 2
    other = tuple(a for a in range(w.ndim) if a != axis)
    magnitude = np.mean(np.abs(w), axis=other)
    score = np.abs(mid - np.arange(k)) / (1.0 + magnitude)
    return np.sort(np.argsort(score, kind="stable")[:new])


def resize_kernel(graph: Graph, name: str, kernel_size: int | Sequence[int], *, key: jax.Array | None = None) -> Graph:
    """Changes the kernel size of conv vertex ``name``, keeping its output shape.

    Shrinking keeps the central taps (NaiveNASflux ``KernelSizeAligned``: the taps nearest the centre, weighed
    by their magnitude); growing pads the kernel symmetrically with small random taps (normal / block size, from
    ``key``). ``"SAME"`` padding stays; explicit or ``"VALID"`` padding is recomputed so the output shape is
    unchanged (a ``ShapeError`` if that needs negative padding).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(7, 7, 2))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c", ng.Conv(3, (3, 5)), inp))
        >>> g2 = ng.resize_kernel(g, "c", (1, 2))
        >>> g2.op("c").kernel_size, g2.params["c"]["kernel"].shape, g2.shape("c")
        ((1, 2), (1, 2, 2, 3), (7, 7, 3))
    """
    _check_graph(graph, "resize_kernel")
    spec = graph.spec
    v = spec[name]
    op = v.op
    if not isinstance(op, Conv):
        raise GraphError(f"resize_kernel: {name!r} is a {type(op).__name__}, not a Conv")
    rank = op.rank
    given: tuple[Any, ...] = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (kernel_size,) * rank
    if len(given) != rank or not all(isinstance(k, (int, np.integer)) and k >= 1 for k in given):
        raise GraphError(f"resize_kernel: kernel_size must be {rank} positive ints, got {kernel_size!r}")
    new = tuple(int(k) for k in given)
    # the spec's ops are resolved: their kernel_size, strides and dilation are tuples of length rank
    old_kernel, dilation = _per_axis(op.kernel_size, rank), _per_axis(op.dilation, rank)
    padding = op.padding
    if padding != "SAME":
        spatial = spec.input_shapes(name)[0][:-1]
        pads, _ = _explicit_pads(spatial, old_kernel, _per_axis(op.strides, rank), dilation, padding)
        padding = []
        for (lo, hi), k_old, k_new, d in zip(pads, old_kernel, new, dilation):
            total = lo + hi + (k_new - k_old) * d
            if total < 0:
                raise GraphError(
                    f"resize_kernel: shrinking {name!r} from {op.kernel_size} to {new} would need negative padding "
                    f"(it has {op.padding!r}) to keep its output shape {v.shape}"
                )
            padding.append((total // 2, total - total // 2))
        padding = tuple(padding)
    kernel = np.asarray(graph.params[name]["kernel"])
    rng = host_rng(default_key(key), "kernel", name)
    index_maps = []
    for axis, k_new in enumerate(new):
        if k_new != kernel.shape[axis]:
            positions = _kernel_positions(kernel, axis, k_new)
            kernel = take(kernel, positions, axis, "block", rng)
            index_maps.append((axis, positions))
    new_spec = spec.replace_entries({name: (op.replace(kernel_size=new, padding=padding), v.inputs)})
    params = dict(graph.params)
    params[name] = {**params[name], "kernel": jax.device_put(kernel)}
    moved = {(name, "kernel"): (graph, (name, "kernel"), tuple(index_maps))}
    return derive(Graph(new_spec, params, dict(graph.state)), [graph], moved)
