"""Checks that a graph's arrays fit its spec."""

from __future__ import annotations

import numpy as np

from .._errors import GraphError
from ._graph import Graph


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
        p, s = v.op.init(rng, spec.input_shapes(v.name), "zero")
        for group, expected, tree in (("params", p, graph.params), ("state", s, graph.state)):
            got = tree.get(v.name, {})
            want = {k: a.shape for k, a in expected.items()}
            have = {k: tuple(np.shape(a)) for k, a in got.items()}
            if group == "state" and "utility" in have and "utility" not in want:
                # A stored activation utility (ng.init_activation_utility): one value per output neuron.
                want = {**want, "utility": (v.nout,)}
            if want != have:
                raise GraphError(f"vertex {v.name!r}: {group} should have shapes {want}, has {have}")
    return graph
