"""Host-side graph analysis for crossover: separable segments, activation ranks and vertex pairing.

NaiveGAflux ``src/crossover/graph.jl``: ``separablefrom``, ``sameactdims``, ``default_pairgen``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ..graph import ABSORB, IMMUTABLE, GraphSpec
from ..search import same_out_shape
from . import _draw


def _spec(graph: Any) -> GraphSpec:
    return getattr(graph, "spec", graph)


def segment(graph: Any, start: str, end: str) -> tuple[str, ...]:
    """The vertices on paths from ``start`` to ``end`` (both included), topological order."""
    spec = _spec(graph)
    members = ({start} | spec.descendants(start)) & ({end} | spec.ancestors(end))
    return tuple(n for n in spec.names if n in members)


def is_separable(graph: Any, start: str, end: str) -> bool:
    """Whether cutting ``end``'s out-edges and ``start``'s in-edges isolates the segment ``start``...``end``.

    Every vertex of the segment but ``start`` reads only from the segment; every vertex but ``end`` feeds only
    the segment; the segment holds no graph input or output.
    """
    spec = _spec(graph)
    members = segment(spec, start, end)
    if not members or members[0] != start or members[-1] != end:
        return False
    inside = set(members)
    for n in members:
        v = spec[n]
        if n in spec.outputs or (v.op.trait == IMMUTABLE and not v.inputs):
            return False
        if n != start and not set(v.inputs) <= inside:
            return False
        if n != end and not set(spec.consumers(n)) <= inside:
            return False
    return True


def separable_from(graph: Any, end: str) -> tuple[str, ...]:
    """The vertices ``start`` for which ``start``...``end`` is separable (``is_separable``), topological order;
    ``end`` itself last when it can be cut out alone (NaiveGAflux ``separablefrom``, reversed).

    Example:
        >>> import jax, naivega_jax as ng
        >>> from naivega_jax.mutation._segments import separable_from
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(4), inp)
        >>> d2 = ng.vertex("d2", ng.Dense(3), d1)
        >>> a = ng.add("a", inp, d2)
        >>> d3 = ng.vertex("d3", ng.Dense(4), a)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("o", ng.Dense(2), d3))
        >>> separable_from(g, "d3")
        ('a', 'd3')
    """
    spec = _spec(graph)
    candidates = spec.ancestors(end) | {end}
    return tuple(n for n in spec.names if n in candidates and is_separable(spec, n, end))


def act_rank(graph: Any, name: str) -> int:
    """The rank of the activations a vertex works on: its output's for absorbing and immutable vertices, its
    input's for size-transparent ones (as NaiveNASflux reports a global pool with its input's dims)."""
    spec = _spec(graph)
    v = spec[name]
    if v.op.trait in (ABSORB, IMMUTABLE) or not v.inputs:
        return len(v.shape)
    return len(spec[v.inputs[0]].shape)


def terminating(spec: GraphSpec, name: str, *, forward: bool) -> tuple[str, ...]:
    """The absorbing or immutable vertices ``name``'s size is tied to (NaiveNASlib ``findterminating``).

    Walks through size-transparent vertices (add, concat, batch-norm, pool) to their consumers (``forward``) or
    their inputs; an absorbing or immutable vertex is its own.
    """
    out: dict[str, None] = {}
    stack, seen = [name], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if spec[v].op.trait in (ABSORB, IMMUTABLE):
            out[v] = None
        else:
            stack.extend(spec.consumers(v) if forward else reversed(spec[v].inputs))
    return tuple(out)


def terminating_outputs(graph: Any, name: str) -> tuple[str, ...]:
    """The absorbing or immutable vertices ``name``'s size reaches forwards (itself if it is one)."""
    return terminating(_spec(graph), name, forward=True)


def same_act_dims(graph1: Any, name1: str, graph2: Any, name2: str) -> bool:
    """NaiveGAflux ``sameactdims``: equal activation ranks for the two vertices and for every pair of their
    size-terminating outputs, so that a conv pairs with a conv and a global pool only with a global pool."""
    if act_rank(graph1, name1) != act_rank(graph2, name2):
        return False
    outs1, outs2 = terminating_outputs(graph1, name1), terminating_outputs(graph2, name2)
    return all(act_rank(graph1, a) == act_rank(graph2, b) for a in outs1 for b in outs2)


def relative_positions(n: int) -> np.ndarray:
    """``i / n`` for ``i = 1..n``: where each of ``n`` vertices sits in its list."""
    return np.arange(1, n + 1) / n


@dataclasses.dataclass(frozen=True)
class DefaultPairGen:
    """Pairs vertex ``vs1[ind1]`` with the compatible vertex of ``vs2`` nearest in relative position.

    ``pairgen(key, graph1, vs1, graph2, vs2, ind1=None) -> (i1, i2) | None`` (NaiveGAflux ``default_pairgen``).
    Positions are ``index / length`` (plus ``deviation`` times a standard normal draw); compatible means
    ``same_act_dims``, and with ``same_shape=True`` also that the segments from each vertex to the last of its list
    change feature-map shapes alike (``default_inputs_pairgen``). ``ind1=None`` picks ``ind1`` at random; ``None``
    is returned when ``ind1`` is past the end or nothing is compatible.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> ng.mutation.DefaultPairGen()(None, g, ["d"], g, ["d"], 0)
        (0, 0)
    """

    deviation: float = 0.0
    same_shape: bool = False

    def __call__(
        self, key: jax.Array, graph1: Any, vs1: Sequence[str], graph2: Any, vs2: Sequence[str], ind1: int | None = None
    ) -> tuple[int, int] | None:
        return default_pairgen(
            key, graph1, vs1, graph2, vs2, ind1, deviation=self.deviation, same_shape=self.same_shape
        )


def default_pairgen(
    key: jax.Array,
    graph1: Any,
    vs1: Sequence[str],
    graph2: Any,
    vs2: Sequence[str],
    ind1: int | None = None,
    *,
    deviation: float = 0.0,
    same_shape: bool = False,
    compatible: Callable[[Any, str, Any, str], bool] | None = None,
) -> tuple[int, int] | None:
    """See ``DefaultPairGen``; ``compatible(graph1, v1, graph2, v2)`` replaces the default compatibility."""
    vs1, vs2 = tuple(vs1), tuple(vs2)
    if not vs1 or not vs2:
        return None
    if ind1 is None:
        ind1 = _draw.choose(key, len(vs1), "pair")
    if ind1 >= len(vs1):
        return None
    if compatible is None:
        compatible = _compatible(vs1, vs2, same_shape)
    candidates = [i for i, v in enumerate(vs2) if compatible(graph1, vs1[ind1], graph2, v)]
    if not candidates:
        return None
    order1, order2 = relative_positions(len(vs1)), relative_positions(len(vs2))
    if deviation:
        order1 = order1 + deviation * _draw.normal(key, len(vs1), "pair1")
        order2 = order2 + deviation * _draw.normal(key, len(vs2), "pair2")
    distances = np.abs(order2[candidates] - order1[ind1])
    return ind1, candidates[int(np.argmin(distances))]


def _compatible(vs1: tuple[str, ...], vs2: tuple[str, ...], same_shape: bool):
    def check(g1: Any, a: str, g2: Any, b: str) -> bool:
        if not same_act_dims(g1, a, g2, b):
            return False
        return not same_shape or same_out_shape(g1, a, vs1[-1], g2, b, vs2[-1])

    return check
