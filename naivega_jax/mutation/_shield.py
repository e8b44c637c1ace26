"""Mutation shields and vertex selection (NaiveGAflux ``MutationShield``, ``FilterMutationAllowed``, ...)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ._base import Mutation, mutation_leaves


def _spec(graph: Any):
    return getattr(graph, "spec", graph)


def allow_mutation(graph: Any, name: str, *mutations: Mutation) -> bool:
    """Whether ``mutations`` may mutate vertex ``name`` of ``graph`` (a Graph or GraphSpec).

    Immutable vertices (inputs, flatten) never; unshielded vertices always; a shielded vertex only if ``mutations``
    is non-empty and the type of every leaf mutation (or one of its base classes) is in the shield's allowed list.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d = ng.vertex("d", ng.Dense(4), inp, shield=[ng.ActivationFunctionMutation])
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("o", ng.Dense(2), d))
        >>> [ng.mutation.allow_mutation(g, n, ng.ActivationFunctionMutation("elu")) for n in g.vertex_names]
        [False, True, True]
        >>> [ng.mutation.allow_mutation(g, n) for n in g.vertex_names]
        [False, False, True]
    """
    spec = _spec(graph)
    if not spec.is_mutable(name):
        return False
    shield = spec[name].shield
    if shield is None:
        return True
    leaves = [leaf for m in mutations for leaf in mutation_leaves(m)]
    return bool(leaves) and all(any(c.__name__ in shield for c in type(leaf).__mro__) for leaf in leaves)


@dataclasses.dataclass(frozen=True)
class AllVertices:
    """Selects every vertex of a graph, in topological order.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> ng.mutation.AllVertices()(g)
        ('in', 'd')
    """

    def __call__(self, graph: Any, *mutations: Mutation) -> tuple[str, ...]:
        return _spec(graph).names


@dataclasses.dataclass(frozen=True)
class FilterMutationAllowed:
    """Keeps the vertices of ``selection`` that ``mutations`` may mutate (see ``allow_mutation``).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> ng.mutation.FilterMutationAllowed()(g, ng.ActivationFunctionMutation("relu"))
        ('d',)
    """

    selection: Any = AllVertices()

    def __call__(self, graph: Any, *mutations: Mutation) -> tuple[str, ...]:
        return tuple(n for n in self.selection(graph, *mutations) if allow_mutation(graph, n, *mutations))
