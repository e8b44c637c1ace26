"""``VertexMutation``: runs a vertex-level mutation on the selected vertices of a graph."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from ..graph import Graph
from ._base import Mutation, check_mutation
from ._shield import FilterMutationAllowed

_DEFAULT_SELECTION = FilterMutationAllowed()


@dataclasses.dataclass(frozen=True)
class VertexMutation(Mutation):
    """A graph mutation that applies the vertex-level mutation ``m`` to the vertices ``selection`` picks.

    ``selection(graph, mutation)`` returns vertex names in topological order; the default,
    ``FilterMutationAllowed()``, takes every vertex except inputs and other immutable vertices, and except shielded
    vertices whose shield does not allow every leaf mutation of this one. ``m`` is called ONCE with all of them.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1, shield=True))
        >>> g2 = ng.VertexMutation(ng.ActivationFunctionMutation("elu"))(jax.random.key(1), g)
        >>> g2.op("d1").activation, g2.op("d2").activation
        ('elu', 'identity')
    """

    m: Mutation
    selection: Any = _DEFAULT_SELECTION

    def __post_init__(self):
        check_mutation(self.m, "VertexMutation")
        if not self.m.vertex_level or self.m.target != "graph":
            raise TypeError(
                f"VertexMutation: m must be a vertex-level graph mutation (NoutMutation, AddVertexMutation, ...), "
                f"got {self.m!r}"
            )
        if not callable(self.selection):
            raise TypeError(
                f"VertexMutation: selection must be callable (graph, mutation) -> names, got {self.selection!r}"
            )

    def wrapped(self) -> tuple[Mutation, ...]:
        return (self.m,)

    def __call__(self, key: jax.Array, graph: Graph) -> Graph:
        if not isinstance(graph, Graph):
            raise TypeError(f"VertexMutation: graph must be an ng.Graph, got {type(graph).__name__}")
        names = tuple(self.selection(graph, self))
        return self.m(key, graph, names) if names else graph
