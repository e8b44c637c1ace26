"""The call signature of an architecture space, as a ``typing.Protocol`` a type checker verifies."""

from __future__ import annotations

from typing import Any, Protocol

import jax

from ..graph import Vertex


class ArchSpaceLike(Protocol):
    """Draws a piece of network on a symbolic vertex and returns its last vertex:
    ``space(key, name, in_vertex, *, outsize=None, weight_init="default") -> vertex``.

    ``name`` prefixes the names of the vertices it makes; ``outsize`` (when not None) fixes the size of the last one;
    ``weight_init`` is how new layers initialise their weights (``"identity"`` for a function-preserving insert).
    Every ``ng.search.AbstractArchSpace`` satisfies it, and so does any function with this signature (the
    combinators and ``ng.mutation.AddVertexMutation`` take either).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.search import ArchSpaceLike
        >>> def one_dense(key, name, in_vertex, *, outsize=None, weight_init="default"):
        ...     return ng.vertex(name, ng.Dense(outsize or 4), in_vertex)
        >>> space: ArchSpaceLike = one_dense
        >>> chain = ng.search.ArchSpaceChain(space, space)
        >>> g = ng.search.sample_graph(jax.random.key(0), chain, ng.input_vertex("in", shape=(3,)))
        >>> [g.nout(n) for n in g.vertex_names[1:]]
        [4, 4]
    """

    def __call__(
        self,
        key: jax.Array,
        name: str,
        in_vertex: Vertex,
        /,
        *,
        outsize: int | None = None,
        weight_init: Any = "default",
    ) -> Vertex: ...
