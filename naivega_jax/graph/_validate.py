"""Checks that a graph's arrays fit its spec."""

from __future__ import annotations

import numpy as np

from .._errors import GraphError
from ._graph import Graph
from ._spec import GraphSpec, VertexSpec


def validate_graph(graph: Graph) -> Graph:
    """Raises ``GraphError`` unless every vertex has exactly the parameter and state arrays its op needs.

    Returns the graph, so it can be used inline.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.validate_graph(g) is g
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"validate_graph: expected an ng.Graph, got {type(graph).__name__}")
    spec = graph.spec
    rng = np.random.default_rng(0)
    for group, tree in (("params", graph.params), ("state", graph.state)):
        unknown = set(tree) - set(spec.names)
        if unknown:
            raise GraphError(f"graph {group} has entries for unknown vertices {sorted(unknown)}")
    for v in spec.vertices:
        _check_declared_sizes(spec, v, graph.params.get(v.name, {}), graph.state.get(v.name, {}))
        try:
            p, s = v.op.init(rng, spec.input_shapes(v.name), "zero")
        except MemoryError:
            raise GraphError(f"vertex {v.name!r}: the arrays its spec asks for do not fit in memory") from None
        for group, expected, tree in (("params", p, graph.params), ("state", s, graph.state)):
            got = tree.get(v.name, {})
            want = {k: a.shape for k, a in expected.items()}
            have = {k: tuple(np.shape(a)) for k, a in got.items()}
            if group == "state" and "utility" in have and "utility" not in want:
                # A stored activation utility (ng.graph.init_activation_utility): one value per output neuron.
                want = {**want, "utility": (v.nout,)}
            if want != have:
                raise GraphError(f"vertex {v.name!r}: {group} should have shapes {want}, has {have}")
    return graph


def _check_declared_sizes(spec: GraphSpec, v: VertexSpec, params: dict, state: dict) -> None:
    """The neuron axes an op declares (``param_axes``, ``state_axes``) checked without building its arrays.

    This catches a spec whose sizes disagree with the arrays before ``init`` allocates what the spec asks for (an
    edited ``spec.json`` may ask for 10^12 neurons). The shapes the spec needs are the arrays' shapes with the
    declared axes resized.
    """
    in_shapes = spec.input_shapes(v.name)
    nin = in_shapes[0][-1] if len(in_shapes) == 1 and in_shapes[0] else None
    for group, declared, tree in (("params", v.op.param_axes(), params), ("state", v.op.state_axes(), state)):
        have = {k: tuple(np.shape(a)) for k, a in tree.items()}
        missing = sorted(set(declared) - set(have))
        if missing:
            raise GraphError(f"vertex {v.name!r}: {group} should have arrays {sorted(declared)}, has {sorted(have)}")
        want = dict(have)
        for name, axes in declared.items():
            shape = list(have[name])
            for axis, size in ((axes.out, v.nout), (axes.inp, nin)):
                if axis is None or size is None:
                    continue
                if not -len(shape) <= axis < len(shape):
                    raise GraphError(
                        f"vertex {v.name!r}: {group} {name!r} has shape {have[name]}, which has no axis {axis} "
                        f"for the op's neurons"
                    )
                shape[axis] = size
            want[name] = tuple(shape)
        if want != have:
            raise GraphError(f"vertex {v.name!r}: {group} should have shapes {want}, has {have}")
