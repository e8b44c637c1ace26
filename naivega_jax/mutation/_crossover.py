"""Graph crossover: swap separable segments between two graphs (NaiveGAflux ``VertexCrossover``/``CrossoverSwap``).

Swapping segment ``S_b`` (``u_b``...``v_b`` of graph ``b``) into graph ``a`` in place of ``S_a`` is done on copies,
in four pure steps, each by the size surgery of ``naivega_jax.graph``:

1. If ``S_b`` starts with an elementwise merge (an add) fed by several inputs, the inputs of ``S_a`` are first
   grown to a common size in ``a``.
2. ``S_b`` is put in a *harness*: a small graph where each input of its start is a stub layer (one per input of
   ``S_a``; a single-input start that must take several inputs gets a merge vertex first) and its end feeds a
   stub. The stubs are resized to the sizes of ``S_a``'s inputs (``delta_nout``, first neurons kept), which
   re-indexes the input weights of the segment (NaiveGAflux's ``AlignNinToNout`` + ``TruncateInIndsToValid``).
3. If the segment's output size differs from ``v_a``'s, a stub standing in for ``v_a`` in ``a`` is resized to it,
   so ``v_a``'s consumers (and whatever is tied to them) follow.
4. The parts are joined; the result must validate and keep ``a``'s output shapes.

Each direction succeeds or fails on its own; a failed direction leaves that parent as it was.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .._errors import NaiveGAError
from ..graph import (
    INVARIANT,
    STACK,
    Concat,
    Conv,
    Dense,
    Graph,
    GraphSpec,
    Input,
    delta_nout,
    derive,
    tied_vertices,
    validate_graph,
)
from ..graph import default_utility as graph_default_utility
from ..graph.internal import init_vertex
from ._base import Mutation, check_mutation, report
from ._generic import log_prefix
from ._graph_ops import output_shapes, unique_name
from ._segments import DefaultPairGen, is_separable, segment, separable_from
from ._shield import FilterMutationAllowed
from ._structure import MergeFun

logger = logging.getLogger("naivega_jax.mutation")

_STUB = "__crossover"
_MERGE = MergeFun()
_ALLOWED = FilterMutationAllowed()
_PAIRS = DefaultPairGen()
_INPUT_PAIRS = DefaultPairGen(same_shape=True)


@dataclasses.dataclass(frozen=True)
class _Segment:
    graph: Graph
    start: str
    end: str
    members: tuple[str, ...]


def _stub_op(shape: tuple[int, ...], nout: int):
    """An absorbing layer that keeps the spatial shape: Dense for vectors, a 1x..x1 conv for feature maps."""
    return Dense(nout) if len(shape) == 1 else Conv(nout, (1,) * (len(shape) - 1))


def _split(total: int, weights: Sequence[int]) -> list[int] | None:
    """``total`` split into ``len(weights)`` positive parts proportional to ``weights`` (largest remainder)."""
    n = len(weights)
    if total < n:
        return None
    w = np.asarray(weights, np.float64)
    raw = (total - n) * w / w.sum()
    parts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[: total - n - int(parts.sum())]] += 1
    return [int(p) + 1 for p in parts]


def _first_kept(stubs: set[str], utility: Callable | None):
    """Utility that keeps a stub's first neurons (positional alignment) and uses ``utility`` elsewhere."""
    base = _utility(utility)

    def fn(graph: Graph, name: str):
        if name in stubs:
            return np.arange(graph.nout(name), 0, -1, dtype=np.float64)
        return base(graph, name)

    return fn


def _resize(graph: Graph, targets: dict[str, int], key: jax.Array, utility: Callable) -> Graph:
    """``delta_nout`` to absolute ``targets`` (one per tied group), exact."""
    deltas: dict[str, int] = {}
    done: set[str] = set()
    for name, n in targets.items():
        if name in done or graph.nout(name) == n:
            continue
        done.update(tied_vertices(graph, name))
        deltas[name] = n - graph.nout(name)
    return delta_nout(graph, deltas, utility=utility, key=key) if deltas else graph


def _equalize_inputs(a: Graph, ins: tuple[str, ...], key: jax.Array, utility: Callable | None) -> Graph:
    """Step 1: the inputs an add will merge grown to one size (the largest)."""
    size = max(a.nout(i) for i in ins)
    return _resize(a, dict.fromkeys(ins, size), key, _utility(utility))


def _harness(
    key: jax.Array, b: _Segment, in_shapes: list[tuple[int, ...]], merge_op: Any
) -> tuple[Graph, str, tuple[str, ...]]:
    """Step 2 (building): ``S_b`` fed by stubs of the right spatial shapes, sized to keep its weights valid.

    ``merge_op`` (or None) is put before a single-input start that must take several inputs. Returns the harness
    graph, the name of the segment's first vertex (the merge, or ``u_b``) and the stubs feeding it, in order.
    """
    spec_b = b.graph.spec
    start = spec_b[b.start]
    m = len(in_shapes)
    taken = set(b.members)

    def fresh(base: str) -> str:
        name = unique_name(spec_b, base, taken)
        taken.add(name)
        return name

    h_ins = [fresh(f"{_STUB}.in{j}") for j in range(m)]
    stubs = tuple(fresh(f"{_STUB}.q{j}") for j in range(m))
    out_stub = fresh(f"{_STUB}.out")
    entries: list[tuple[str, Any, tuple[str, ...]]] = []
    shields = {n: spec_b[n].shield for n in b.members if spec_b[n].shield is not None}
    first, first_op = b.start, start.op
    if merge_op is not None:
        first_op = merge_op
        first = fresh(f"{start.inputs[0]}.{'cat' if isinstance(merge_op, Concat) else 'add'}")
        shields[first] = ()
        entries.append((first, merge_op, stubs))
    sizes = _start_sizes(spec_b, b.start, first_op, merge_op is not None, in_shapes)
    if sizes is None:
        raise _Failed(f"{b.start} cannot take {m} inputs")
    for h_in, stub, shape, size in zip(h_ins, stubs, in_shapes, sizes):
        entries.append((h_in, Input((*shape[:-1], 1)), ()))
        entries.append((stub, _stub_op(shape, size), (h_in,)))
    for n in b.members:
        v = spec_b[n]
        ins = v.inputs
        if n == b.start:
            ins = (first,) if merge_op is not None else stubs
        entries.append((n, v.op, ins))
    entries.append((out_stub, _stub_op(spec_b[b.end].shape, 1), (b.end,)))
    spec = GraphSpec.create(entries, h_ins, [out_stub], shields)
    params = {n: b.graph.params[n] for n in b.members if n in b.graph.params}
    state = {n: b.graph.state[n] for n in b.members if n in b.graph.state}
    for n in (*stubs, out_stub):
        params[n], _ = init_vertex(key, spec, n)
    return validate_graph(derive(Graph(spec, params, state), [b.graph])), first, stubs


def _start_sizes(spec_b: GraphSpec, start: str, op: Any, merged: bool, in_shapes: list) -> list[int] | None:
    """Stub sizes that keep the segment's weights valid: its start's current input sizes where they can be kept,
    else a split of its current size proportional to the sizes it will get."""
    v = spec_b[start]
    m = len(in_shapes)
    targets = [s[-1] for s in in_shapes]
    total = spec_b.nin(start)[0] if merged else v.nout
    if not merged and len(v.inputs) == m:
        return list(spec_b.nin(start))
    if op.trait == INVARIANT:
        return [total] * m
    if op.trait == STACK:
        return _split(total, targets)
    return None


class _Failed(Exception):
    pass


def _socket(a: _Segment, size: int, key: jax.Array, utility: Callable | None) -> tuple[Graph, str]:
    """Step 3: ``a`` with ``S_a`` replaced by a stub of ``size`` neurons feeding ``v_a``'s consumers (whose input
    weights and tied sizes follow). The inputs of ``S_a`` are kept alive as extra outputs."""
    spec = a.graph.spec
    end = spec[a.end]
    members = set(a.members)
    h_in = unique_name(spec, f"{_STUB}.socket_in")
    stub = unique_name(spec, f"{_STUB}.socket", {h_in})
    entries = []
    for v in spec.vertices:
        if v.name in members:
            continue
        entries.append((v.name, v.op, tuple(stub if i == a.end else i for i in v.inputs)))
    entries.append((h_in, Input((*end.shape[:-1], 1)), ()))
    entries.append((stub, _stub_op(end.shape, end.nout), (h_in,)))
    keep = tuple(dict.fromkeys(i for i in spec[a.start].inputs if i not in spec.outputs))
    new_spec = GraphSpec.create(entries, (*spec.inputs, h_in), (*spec.outputs, *keep), spec.shields())
    params = {k: v for k, v in a.graph.params.items() if k not in members}
    state = {k: v for k, v in a.graph.state.items() if k not in members}
    params[stub], _ = init_vertex(key, new_spec, stub)
    g = derive(Graph(new_spec, params, state), [a.graph])
    if size != end.nout:
        g = _resize(g, {stub: size}, key, _first_kept({stub}, utility))
    return g, stub


def transplant(key: jax.Array, a: _Segment, b: _Segment, mergefun: Callable, utility: Callable | None) -> Graph:
    """Graph ``a`` with segment ``a`` replaced by segment ``b``; raises ``_Failed`` or a NaiveGAError if it cannot."""
    k_merge, k_eq, k_harness, k_socket = jax.random.split(key, 4)
    ga = a.graph
    ins = ga.inputs(a.start)
    start_b = b.graph.spec[b.start]
    merge_op = mergefun(k_merge) if len(ins) > 1 and start_b.op.max_inputs == 1 else None
    first_op = start_b.op if merge_op is None else merge_op
    if len(ins) > 1 and first_op.trait == INVARIANT:
        ga = _equalize_inputs(ga, ins, k_eq, utility)
    in_shapes = [ga.shape(i) for i in ins]
    harness, first, stubs = _harness(k_harness, b, in_shapes, merge_op)
    targets = {s: shape[-1] for s, shape in zip(stubs, in_shapes)}
    harness = _resize(harness, targets, k_harness, _first_kept(set(stubs), utility))
    a2 = dataclasses.replace(a, graph=ga)
    try:
        base, socket = _socket(a2, harness.nout(b.end), k_socket, utility)
    except NaiveGAError:
        # The consumers cannot follow (their size is tied to something fixed): fit the segment's output instead.
        harness = _resize(harness, {b.end: ga.nout(a.end)}, k_socket, _utility(utility))
        base, socket = _socket(a2, ga.nout(a.end), k_socket, utility)
    return _join(ga, base, socket, harness, b, first, ins)


def _utility(utility: Callable | None) -> Callable:
    return graph_default_utility if utility is None else utility


def _join(ga: Graph, base: Graph, socket: str, harness: Graph, b: _Segment, first: str, ins: tuple[str, ...]) -> Graph:
    """Step 4: the socket graph with the stub replaced by the harnessed segment."""
    bspec, hspec = base.spec, harness.spec
    seg = [n for n in hspec.names if n == first or n in b.members]
    remaining = {n for n in bspec.names if not n.startswith(_STUB)}
    rename: dict[str, str] = {}
    for n in seg:
        rename[n] = unique_name(remaining, n, set(rename.values()))
    entries = []
    for v in bspec.vertices:
        if v.name.startswith(_STUB):
            continue
        entries.append((v.name, v.op, tuple(rename[b.end] if i == socket else i for i in v.inputs)))
    for n in seg:
        v = hspec[n]
        new_ins = ins if n == first else tuple(rename[i] for i in v.inputs)
        entries.append((rename[n], v.op, new_ins))
    shields: dict[str, tuple[str, ...] | None] = {k: s for k, s in bspec.shields().items() if not k.startswith(_STUB)}
    shields.update({rename[n]: hspec[n].shield for n in seg if hspec[n].shield is not None})
    spec = GraphSpec.create(entries, ga.spec.inputs, ga.spec.outputs, shields)
    params = {k: v for k, v in base.params.items() if k in spec}
    state = {k: v for k, v in base.state.items() if k in spec}
    for n in seg:
        if n in harness.params:
            params[rename[n]] = harness.params[n]
        if n in harness.state:
            state[rename[n]] = harness.state[n]
    result = validate_graph(derive(Graph(spec, params, state), [base, harness]))
    if output_shapes(result) != output_shapes(ga):
        raise _Failed("the graph's output shapes would change")
    return result


def swap_segments(
    key: jax.Array,
    a: Graph,
    a_segment: tuple[str, str],
    b: Graph,
    b_segment: tuple[str, str],
    *,
    mergefun: Callable = _MERGE,
    utility: Callable | None = None,
) -> tuple[Graph | None, Graph | None]:
    """Both children of swapping ``a_segment = (start, end)`` of ``a`` with ``b_segment`` of ``b``.

    Each child is None where that direction failed (sizes that cannot be aligned, shapes that do not fit). The
    segments must be separable (``is_separable``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation._crossover import swap_segments
        >>> def g(p, sizes):
        ...     v = inp = ng.input_vertex(f"{p}.in", shape=(3,))
        ...     for i, n in enumerate(sizes):
        ...         v = ng.vertex(f"{p}.dv{i + 1}", ng.Dense(n), v)
        ...     return ng.build_graph(jax.random.key(0), inputs=inp, outputs=v)
        >>> a, b = g("a", [4, 5, 6]), g("b", [1, 2, 3])
        >>> a2, b2 = swap_segments(jax.random.key(1), a, ("a.dv2", "a.dv2"), b, ("b.dv2", "b.dv2"))
        >>> [(n, a2.nout(n)) for n in a2.vertex_names]
        [('a.in', 3), ('a.dv1', 4), ('b.dv2', 2), ('a.dv3', 6)]
        >>> [(n, b2.nout(n)) for n in b2.vertex_names]
        [('b.in', 3), ('b.dv1', 1), ('a.dv2', 5), ('b.dv3', 3)]
    """
    sa = _Segment(a, a_segment[0], a_segment[1], segment(a, *a_segment))
    sb = _Segment(b, b_segment[0], b_segment[1], segment(b, *b_segment))
    for s in (sa, sb):
        if not is_separable(s.graph, s.start, s.end):
            raise ValueError(f"swap_segments: {s.start}...{s.end} is not a separable segment of its graph")
    k1, k2 = jax.random.split(key)
    return _try(k1, sa, sb, mergefun, utility), _try(k2, sb, sa, mergefun, utility)


def _try(key, a: _Segment, b: _Segment, mergefun, utility) -> Graph | None:
    try:
        return transplant(key, a, b, mergefun, utility)
    except (_Failed, NaiveGAError, ValueError) as e:
        logger.warning(
            "%sFailed to swap in %s...%s for %s...%s for crossover. Attempt aborted! (%s)",
            log_prefix(),
            b.start,
            b.end,
            a.start,
            a.end,
            e,
        )
        return None


@dataclasses.dataclass(frozen=True)
class CrossoverSwap(Mutation):
    """Vertex-level crossover: for each pair ``(v1, v2)`` swaps a segment ending at ``v1`` with one ending at ``v2``.

    ``c(key, (graph1, graph2), pairs) -> (graph1', graph2')``, used through ``VertexCrossover``. The segment starts
    are drawn among the separable starts whose whole segment ``selection`` allows (so shielded vertices stay where
    they are) and paired by ``pairgen`` (default: nearest
    relative position among compatible vertices whose segments change feature-map shapes alike; ``deviation``
    adds noise). Sizes are re-aligned by the size surgery (neurons chosen by ``utility``); a start that must take
    several inputs gets a merge vertex from ``mergefun``. Each child that cannot be made is its parent unchanged.

    Example:
        >>> import jax, naivega_jax as ng
        >>> def g(p, sizes):
        ...     v = inp = ng.input_vertex(f"{p}.in", shape=(3,))
        ...     for i, n in enumerate(sizes):
        ...         v = ng.vertex(f"{p}.dv{i + 1}", ng.Dense(n), v)
        ...     return ng.build_graph(jax.random.key(0), inputs=inp, outputs=v)
        >>> a, b = ng.CrossoverSwap()(jax.random.key(1), (g("a", [4, 5, 6]), g("b", [1, 2, 3])), [("a.dv2", "b.dv2")])
        >>> a.vertex_names, b.vertex_names
        (('a.in', 'a.dv1', 'b.dv2', 'a.dv3'), ('b.in', 'b.dv1', 'a.dv2', 'b.dv3'))
    """

    pairgen: Callable = _INPUT_PAIRS
    mergefun: Callable = _MERGE
    selection: Any = _ALLOWED
    utility: Callable | None = None
    vertex_level = True
    is_crossover = True

    def __post_init__(self):
        for name in ("pairgen", "mergefun", "selection"):
            if not callable(getattr(self, name)):
                raise TypeError(f"CrossoverSwap: {name} must be callable, got {getattr(self, name)!r}")

    @classmethod
    def with_deviation(cls, deviation: float, **kwargs: Any) -> CrossoverSwap:
        """NaiveGAflux's ``CrossoverSwap(deviation)``: pairing with positional noise."""
        return cls(pairgen=DefaultPairGen(deviation, same_shape=True), **kwargs)

    def __call__(self, key: jax.Array, graphs: tuple[Graph, Graph], pairs: Sequence[tuple[str, str]]):
        g1, g2 = graphs
        for i, (v1, v2) in enumerate(pairs):
            if v1 not in g1.spec or v2 not in g2.spec:
                continue
            k = jax.random.fold_in(key, i)
            g1, g2 = self._swap(k, g1, v1, g2, v2)
        return g1, g2

    def _starts(self, graph: Graph, end: str) -> tuple[str, ...]:
        """Separable starts whose whole segment ``selection`` allows (so shielded vertices never move)."""
        allowed = set(self.selection(graph, self))
        return tuple(n for n in separable_from(graph, end) if allowed.issuperset(segment(graph, n, end)))

    def _swap(self, key: jax.Array, g1: Graph, v1: str, g2: Graph, v2: str) -> tuple[Graph, Graph]:
        vs1, vs2 = self._starts(g1, v1), self._starts(g2, v2)
        if not vs1 or not vs2 or vs1[-1] != v1 or vs2[-1] != v2:
            return g1, g2
        k_pair, k_swap = jax.random.split(key)
        inds = self.pairgen(k_pair, g1, vs1, g2, vs2, None)
        if inds is None:
            return g1, g2
        s1, s2 = (vs1[inds[0]], v1), (vs2[inds[1]], v2)
        new1, new2 = swap_segments(k_swap, g1, s1, g2, s2, mergefun=self.mergefun, utility=self.utility)
        report("CrossoverSwap", segments=[list(s1), list(s2)], success=[new1 is not None, new2 is not None])
        return (g1 if new1 is None else new1), (g2 if new2 is None else new2)


@dataclasses.dataclass(frozen=True)
class VertexCrossover(Mutation):
    """Graph crossover ``c(key, (graph1, graph2)) -> (graph1', graph2')``: walks the selected vertices of the first
    graph, pairs each with a vertex of the second (``pairgen``: nearest relative position among compatible ones)
    and applies the vertex-level ``crossover`` (usually ``ng.CrossoverSwap``, often wrapped in
    ``ng.MutationProbability``) to the pair; both graphs are re-selected after every swap. Parents are never
    modified; the numbers of graph inputs and outputs are unchanged.

    Example:
        >>> import jax, naivega_jax as ng
        >>> def g(p, sizes):
        ...     v = inp = ng.input_vertex(f"{p}.in", shape=(3,))
        ...     for i, n in enumerate(sizes):
        ...         v = ng.vertex(f"{p}.dv{i + 1}", ng.Dense(n), v)
        ...     out = ng.vertex(f"{p}.out", ng.Dense(2), v, shield=True)
        ...     return ng.build_graph(jax.random.key(0), inputs=inp, outputs=out)
        >>> c = ng.VertexCrossover(ng.MutationProbability(ng.CrossoverSwap(), 0.5))
        >>> a, b = c(jax.random.key(3), (g("a", [4, 5, 6]), g("b", [1, 2, 3])))
        >>> a.vertex_names, b.vertex_names
        (('a.in', 'b.dv1', 'a.dv2', 'b.dv3', 'a.out'), ('b.in', 'a.dv1', 'b.dv2', 'a.dv3', 'b.out'))
    """

    crossover: Mutation
    selection: Any = _ALLOWED
    pairgen: Callable = _PAIRS
    is_crossover = True

    def __post_init__(self):
        check_mutation(self.crossover, "VertexCrossover")
        if not (self.crossover.vertex_level and self.crossover.is_crossover and self.crossover.target == "graph"):
            raise TypeError(
                f"VertexCrossover: crossover must be a vertex-level graph crossover (ng.CrossoverSwap(...)), "
                f"got {self.crossover!r}"
            )
        for name in ("selection", "pairgen"):
            if not callable(getattr(self, name)):
                raise TypeError(f"VertexCrossover: {name} must be callable, got {getattr(self, name)!r}")

    def wrapped(self) -> tuple[Mutation, ...]:
        return (self.crossover,)

    def __call__(self, key: jax.Array, graphs: tuple[Graph, Graph]) -> tuple[Graph, Graph]:
        g1, g2 = graphs
        for g in (g1, g2):
            if not isinstance(g, Graph):
                raise TypeError(f"VertexCrossover: expected a pair of ng.Graph, got {type(g).__name__}")
        counts = (len(g1.input_names), len(g1.output_names), len(g2.input_names), len(g2.output_names))
        ind1, step = 0, 0
        while True:
            vs1, vs2 = self.selection(g1, self), self.selection(g2, self)
            k = jax.random.fold_in(key, step)
            inds = self.pairgen(k, g1, vs1, g2, vs2, ind1)
            if inds is None:
                break
            i1, i2 = inds
            n1, n2 = self.crossover(jax.random.fold_in(k, 1), (g1, g2), [(vs1[i1], vs2[i2])])
            if (len(n1.input_names), len(n1.output_names), len(n2.input_names), len(n2.output_names)) == counts:
                g1, g2 = n1, n2
            ind1, step = i1 + 1, step + 1
        return g1, g2
