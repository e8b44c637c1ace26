"""Feature-map shape traces through a graph, and the shape checks mutations and crossover use.

Concrete shapes are stored on the graph (``graph.shape(name)``); traces are symbolic, so they compare paths
independently of the input size (NaiveGAflux ``shapetrace``, ``no_shapechange``, ``sameoutshape``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from .._errors import GraphError
from ..graph import AvgPool, Conv, Flatten, GlobalPool, Graph, GraphSpec, MaxPool
from ._shapes import DeltaShape, ShapeAdd, ShapeDiv, ShapeFlatten, all_shape_types, shape_diff, squash_shapes


def _spec(graph: Graph | GraphSpec) -> GraphSpec:
    if isinstance(graph, Graph):
        return graph.spec
    if isinstance(graph, GraphSpec):
        return graph
    raise TypeError(f"expected an ng.Graph or ng.GraphSpec, got {type(graph).__name__}")


def _window(kernel, strides, dilation, padding) -> tuple[DeltaShape, ...]:
    dilation = (1,) * len(kernel) if dilation is None else dilation
    effective = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    if padding == "SAME":
        add = (0,) * len(kernel)
    elif padding == "VALID":
        add = tuple(1 - e for e in effective)
    else:
        add = tuple(lo + hi + 1 - e for (lo, hi), e in zip(padding, effective))
    return ShapeAdd(add), ShapeDiv(tuple(strides))


def delta_shapes(graph: Graph | GraphSpec, name: str) -> tuple[DeltaShape, ...]:
    """How vertex ``name`` changes the spatial axes of its input (NaiveGAflux ``Δshapes``).

    Conv and pools give ``ShapeAdd(pad_actual - pad_same)`` then ``ShapeDiv(stride)`` (noops included),
    ``GlobalPool`` and ``Flatten`` of a feature map give ``ShapeFlatten(n_spatial)``, other ops nothing. A user op
    can define ``delta_shapes(in_shapes) -> tuple of DeltaShape`` to take part.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(9, 9, 3))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp,
        ...                    outputs=ng.vertex("c", ng.Conv(4, 3, strides=2, padding="VALID"), inp))
        >>> ng.search.delta_shapes(g, "c")
        (ShapeAdd(-2, -2), ShapeDiv(2, 2))
    """
    spec = _spec(graph)
    v = spec[name]
    op = v.op
    in_shapes = spec.input_shapes(name)
    custom = getattr(op, "delta_shapes", None)
    if custom is not None:
        return tuple(custom(in_shapes))
    if isinstance(op, Conv):
        return _window(op.kernel_size, op.strides, op.dilation, op.padding)
    if isinstance(op, (MaxPool, AvgPool)):
        return _window(op.window, op.strides, None, op.padding)
    if isinstance(op, (GlobalPool, Flatten)) and len(in_shapes[0]) > 1:
        return (ShapeFlatten(len(in_shapes[0]) - 1),)
    return ()


@dataclasses.dataclass(frozen=True)
class ShapeTrace:
    """The shape changes from ``origin`` to ``dest``. ``trace`` holds ``DeltaShape`` objects in order and, where
    paths merged, a tuple of ``ShapeTrace`` objects (one per input of the merge vertex) as one element.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("p", ng.MaxPool(2), inp))
        >>> ng.search.shape_trace(g, "p")
        ShapeTrace(origin='in', dest='p', trace=(ShapeAdd(-1, -1), ShapeDiv(2, 2)))
    """

    origin: str
    dest: str
    trace: tuple[Any, ...]


def _sources(spec: GraphSpec, sources: str | Sequence[str] | None) -> tuple[str, ...]:
    if sources is None:
        return spec.inputs
    names = (sources,) if isinstance(sources, str) else tuple(sources)
    for n in names:
        spec.index(n)
    return names


@functools.lru_cache(maxsize=256)
def _traces(spec: GraphSpec, sources: tuple[str, ...]) -> dict[str, ShapeTrace]:
    traces = {s: ShapeTrace(s, s, delta_shapes(spec, s)) for s in sources}
    for v in spec.vertices:
        if v.name in traces:
            continue
        ins = [traces[i] for i in v.inputs if i in traces]
        if not ins:
            continue
        delta = delta_shapes(spec, v.name)
        if len(ins) == 1:
            traces[v.name] = ShapeTrace(ins[0].origin, v.name, ins[0].trace + delta)
        else:
            branches = tuple(ShapeTrace(t.origin, v.name, t.trace + delta) for t in ins)
            traces[v.name] = ShapeTrace(v.name, v.name, (branches,))
    return traces


def shape_trace(graph: Graph | GraphSpec, to: str, sources: str | Sequence[str] | None = None) -> ShapeTrace:
    """The shape changes on every path from ``sources`` (default: the graph inputs) to ``to``, ``to``'s own
    included (NaiveGAflux ``shapetrace(to, sources...)``); a source's own changes are included too.

    Inputs of a merge that no source reaches are left out; ``GraphError`` if none reaches ``to``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> c = ng.vertex("c", ng.Conv(3, 3, padding="VALID"), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("p", ng.MaxPool(2), c))
        >>> ng.search.squash_shapes(ng.search.shape_trace(g, "p"))
        (ShapeAdd(-3, -3), ShapeDiv(2, 2))
    """
    spec = _spec(graph)
    spec.index(to)
    srcs = _sources(spec, sources)
    trace = _traces(spec, srcs).get(to)
    if trace is None:
        raise GraphError(f"shape_trace: vertex {to!r} is not reachable from {list(srcs)}")
    return trace


@functools.lru_cache(maxsize=4096)
def _squashed(spec: GraphSpec, name: str, order: tuple[Any, ...]):
    """The squashed trace from the graph inputs to ``name`` with ``order`` first, then the trace's other types."""
    trace = shape_trace(spec, name)
    types = all_shape_types(trace)
    return squash_shapes(trace, order + tuple(t for t in types if t not in order))


def no_shape_change(graph: Graph | GraphSpec, a: str, b: str) -> bool:
    """Whether feeding vertex ``a`` into vertex ``b`` (directly, or through a merge before ``b``) keeps every
    feature-map shape: each current input of ``b`` has the same squashed trace from the graph inputs as ``a``
    (for every input size, not only the graph's). Cycles are not checked here: see ``add_edge_candidates``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> c1 = ng.vertex("c1", ng.Conv(3, 3), inp)
        >>> p = ng.vertex("p", ng.MaxPool(2), c1)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c2", ng.Conv(3, 3), p))
        >>> ng.search.no_shape_change(g, "in", "p"), ng.search.no_shape_change(g, "c1", "c2")
        (True, False)
    """
    spec = _spec(graph)
    order = all_shape_types(shape_trace(spec, a))
    target = _squashed(spec, a, order)
    return all(_squashed(spec, i, order) == target for i in spec[b].inputs)


def add_edge_candidates(graph: Graph | GraphSpec, name: str) -> tuple[str, ...]:
    """The vertices that may take ``name`` as an extra input (NaiveGAflux ``no_shapechange``), topological order:
    not inputs, not ancestors of ``name`` or ``name`` itself (no cycles), not already its outputs, not single-input
    consumers of ``name``'s inputs (that would make a size cycle), and ``no_shape_change(graph, name, v)``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(4,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> d2 = ng.vertex("d2", ng.Dense(4), d1)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d3", ng.Dense(2), d2))
        >>> ng.search.add_edge_candidates(g, "d1")
        ('d3',)
    """
    spec = _spec(graph)
    excluded = {name} | spec.ancestors(name) | set(spec.consumers(name)) | set(spec.inputs)
    for i in spec[name].inputs:
        excluded |= {o for o in spec.consumers(i) if spec[o].op.max_inputs == 1}
    order = all_shape_types(shape_trace(spec, name))
    target = _squashed(spec, name, order)
    return tuple(
        v.name
        for v in spec.vertices
        if v.name not in excluded and all(_squashed(spec, i, order) == target for i in v.inputs)
    )


def same_out_shape(
    graph1: Graph | GraphSpec, in1: str, out1: str, graph2: Graph | GraphSpec, in2: str, out2: str
) -> bool:
    """Whether the path ``in1 -> out1`` of ``graph1`` maps feature-map shapes as ``in2 -> out2`` of ``graph2`` does,
    for every input size (NaiveGAflux ``sameoutshape``, used to pick crossover points); both ends' own changes
    count.

    Example:
        >>> import jax, naivega_jax as ng
        >>> def g(stride):
        ...     inp = ng.input_vertex("in", shape=(8, 8, 3))
        ...     c = ng.vertex("c", ng.Conv(3, 3, strides=stride), inp)
        ...     return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Conv(3, 1), c))
        >>> same = ng.search.same_out_shape
        >>> same(g(1), "c", "d", g(1), "c", "d"), same(g(1), "c", "d", g(2), "c", "d")
        (True, False)
    """
    t1 = squash_shapes(shape_trace(graph1, out1, in1))
    t2 = squash_shapes(shape_trace(graph2, out2, in2))
    if t1 == t2:
        return True
    try:
        return not shape_diff(t1, t2)
    except GraphError:
        return False


def feature_map_size(graph: Graph | GraphSpec, name: str) -> tuple[int, ...]:
    """The concrete spatial shape vertex ``name`` outputs (channels excluded; ``()`` for vectors).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 8, 3))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("p", ng.MaxPool(2), inp))
        >>> ng.search.feature_map_size(g, "p")
        (4, 4)
    """
    return _spec(graph)[name].shape[:-1]
