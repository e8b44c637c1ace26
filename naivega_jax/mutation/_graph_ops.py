"""Vertex-level graph mutations that change a vertex's op in place: activation function and kernel size."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..graph import Graph
from ..graph._activations import check_activation
from . import _draw
from ._base import Mutation, report


class VertexLevel(Mutation):
    """Base of vertex-level graph mutations: ``m(key, graph, names) -> graph``."""

    vertex_level = True

    def _names(self, graph: Any, names: Any) -> tuple[str, ...]:
        """Checks the call and returns the names still in the graph (an earlier mutation may have removed some)."""
        where = type(self).__name__
        if not isinstance(graph, Graph):
            raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
        if names is None or isinstance(names, str):
            raise TypeError(
                f"{where} is vertex-level: call it as m(key, graph, names) with a sequence of vertex names, "
                f"or wrap it: ng.VertexMutation({where}(...)); got names={names!r}"
            )
        return tuple(n for n in names if n in graph.spec)


@dataclasses.dataclass(frozen=True, init=False)
class ActivationFunctionMutation(VertexLevel):
    """Sets the activation of each vertex whose op has one (Dense, Conv, BatchNorm) to a random choice.

    Other vertices are left alone; weights are kept. Activations are names (``"relu"``, ``"elu"``, ...).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> ng.VertexMutation(ng.ActivationFunctionMutation("elu"))(jax.random.key(1), g).op("d").activation
        'elu'
    """

    activations: tuple[str, ...]

    def __init__(self, *activations: str):
        if len(activations) == 1 and isinstance(activations[0], (list, tuple)):
            activations = tuple(activations[0])
        if not activations:
            raise ValueError("ActivationFunctionMutation: give at least one activation name, e.g. 'relu'")
        for a in activations:
            check_activation(a, "ActivationFunctionMutation")
        object.__setattr__(self, "activations", tuple(activations))

    def __call__(self, key: Any, graph: Graph, names: Any) -> Graph:
        names = [n for n in self._names(graph, names) if getattr(graph.op(n), "has_activation", False)]
        if not names:
            return graph
        draws = _draw.uniform(key, len(names), "activation")
        changes, done = {}, {}
        for n, u in zip(names, draws):
            act = self.activations[min(int(u * len(self.activations)), len(self.activations) - 1)]
            op = graph.op(n)
            if op.activation != act:
                changes[n] = (op.replace(activation=act), graph.inputs(n))
                done[n] = [op.activation, act]
        if not changes:
            return graph
        report("ActivationFunctionMutation", changes=done)
        return graph.replace(spec=graph.spec.replace_entries(changes))
