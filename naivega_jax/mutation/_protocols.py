"""The call signatures of the mutation kinds, as ``typing.Protocol``s a type checker verifies.

A mutation need not subclass ``ng.mutation.Mutation`` to satisfy one: any callable with the right signature (and,
for field mutations, a ``target``) does. The wrappers (``MutationChain``, ``MutationProbability`` ...) still read
the class variables ``target``, ``vertex_level`` and ``is_crossover`` at run time to dispatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import jax

from ..graph import Graph

T = TypeVar("T")


class GraphLevelMutation(Protocol):
    """A mutation of a whole graph: ``m(key, graph) -> graph`` (``target == "graph"``, not vertex-level).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation import GraphLevelMutation
        >>> m: GraphLevelMutation = ng.mutation.VertexMutation(ng.mutation.NoutMutation(-0.5, 0.5))
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> m(jax.random.key(1), g).nout("d")
        2
    """

    def __call__(self, key: jax.Array, graph: Graph, /) -> Graph: ...


class VertexLevelMutation(Protocol):
    """A mutation applied to the named vertices of a graph at once: ``m(key, graph, names) -> graph``.

    ``vertex_level`` is true; ``ng.mutation.VertexMutation`` picks the names and makes it a graph-level mutation.

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation import VertexLevelMutation
        >>> m: VertexLevelMutation = ng.mutation.NoutMutation(0.5, 0.5)
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> m(jax.random.key(1), g, ("d1",)).nout("d1")
        6
    """

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str], /) -> Graph: ...


class FieldMutation(Protocol[T]):
    """A mutation of one candidate field other than the graph: ``m(key, value) -> value``.

    ``target`` names the field: ``"optimiser"`` (the value is an optimiser spec) or ``"batch_size"`` (an int).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation import FieldMutation
        >>> m: FieldMutation[ng.train.Optimiser] = ng.mutation.OptimiserMutation([ng.SGD])
        >>> m.target, type(m(jax.random.key(0), ng.Adam(1e-3))).__name__
        ('optimiser', 'SGD')
    """

    @property
    def target(self) -> str: ...

    def __call__(self, key: jax.Array, value: T, /) -> T: ...


class Crossover(Protocol[T]):
    """A crossover of two parents: ``c(key, (a, b)) -> (a', b')`` (``is_crossover`` is true).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation import Crossover
        >>> c: Crossover[int] = ng.mutation.BatchSizeCrossover()
        >>> sorted(c(jax.random.key(0), (16, 64)))
        [16, 64]
    """

    def __call__(self, key: jax.Array, pair: tuple[T, T], /) -> tuple[T, T]: ...
