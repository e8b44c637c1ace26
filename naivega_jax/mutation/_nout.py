"""``NoutMutation``: change the widths of several vertices, solved as one size problem."""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections.abc import Callable, Sequence

import jax

from .._errors import SizeChangeError
from ..graph import Graph, GraphSpec, delta_nout, is_size_fixed, tied_vertices
from . import _draw
from ._base import report
from ._generic import log_prefix
from ._graph_ops import VertexLevel
from ._segments import terminating

logger = logging.getLogger("naivega_jax.mutation")


def terminating_inputs(spec: GraphSpec, name: str) -> tuple[str, ...]:
    """The vertices whose sizes ``name``'s size comes from (NaiveNASlib ``findterminating(v, inputs)``).

    An absorbing or immutable vertex is its own; a size-transparent one (add, concat, batch-norm, pool) has
    those of its inputs.
    """
    return terminating(spec, name, forward=False)


@dataclasses.dataclass(frozen=True, init=False)
class NoutMutation(VertexLevel):
    """Changes the number of output neurons of each vertex by ``x * nout`` rounded away from zero.

    ``x`` is drawn from U(min(l1, l2), max(l1, l2)) per vertex; ``NoutMutation(l)`` means the range between 0 and
    ``l``. All changes are solved as ONE relaxed size problem (``ng.delta_nout(..., relaxed=True)``), so tied
    vertices and concatenations stay consistent and the kept neurons are those of highest ``utility``.

    A vertex is skipped when its size cannot change (tied to an input, a flatten or a graph output), when all the
    vertices its size comes from are immutable, or when the change would make its smallest such vertex empty.
    Of several selected vertices tied to one size, the first one's change is used. If no consistent sizes exist
    (or the solver times out) a warning is logged and the graph is returned unchanged.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> d1 = ng.vertex("d1", ng.Dense(10), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d2", ng.Dense(2), d1))
        >>> ng.VertexMutation(ng.NoutMutation(0.2, 0.2))(jax.random.key(1), g).nout("d1")
        12
    """

    minrel: float
    maxrel: float
    utility: Callable | None = None
    time_limit: float = 20.0

    def __init__(
        self, l1: float, l2: float | None = None, *, utility: Callable | None = None, time_limit: float = 20.0
    ):
        if l2 is None:
            l1, l2 = 0.0, l1
        for arg, v in (("l1", l1), ("l2", l2)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"NoutMutation: {arg} must be a finite number (a relative change), got {v!r}")
        if utility is not None and not callable(utility):
            raise TypeError(
                f"NoutMutation: utility must be None or a function (graph, name) -> values, got {utility!r}"
            )
        if not time_limit > 0:
            raise ValueError(f"NoutMutation: time_limit must be > 0 seconds, got {time_limit!r}")
        lo, hi = sorted((float(l1), float(l2)))
        object.__setattr__(self, "minrel", lo)
        object.__setattr__(self, "maxrel", hi)
        object.__setattr__(self, "utility", utility)
        object.__setattr__(self, "time_limit", float(time_limit))

    def deltas(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> dict[str, int]:
        """The size changes this mutation asks for (before solving), one per tied group."""
        names = self._names(graph, names)
        spec = graph.spec
        xs = _draw.uniform(key, len(names), "nout") * (self.maxrel - self.minrel) + self.minrel
        deltas: dict[str, int] = {}
        groups_done: set[str] = set()
        for name, x in zip(names, xs):
            terminals = terminating_inputs(spec, name)
            if not any(spec.is_mutable(t) for t in terminals) or is_size_fixed(spec, name):
                continue
            delta = int(math.ceil(abs(x) * spec.nout(name)) * math.copysign(1, x)) if x != 0 else 0
            if delta == 0 or min(spec.nout(t) for t in terminals) + delta <= 0:
                continue
            if name in groups_done:
                continue
            groups_done.update(tied_vertices(spec, name))
            deltas[name] = delta
        return deltas

    def __call__(self, key: jax.Array, graph: Graph, names: Sequence[str]) -> Graph:
        deltas = self.deltas(key, graph, names)
        if not deltas:
            return graph
        try:
            new = delta_nout(graph, deltas, utility=self.utility, relaxed=True, key=key, time_limit=self.time_limit)
        except SizeChangeError as e:
            logger.warning(
                "%sCould not change nout of %s by %s. No change! (%s)",
                log_prefix(),
                ", ".join(deltas),
                ", ".join(f"{d:+d}" for d in deltas.values()),
                e,
            )
            return graph
        changes = {n: [graph.nout(n), new.nout(n)] for n in graph.vertex_names if new.nout(n) != graph.nout(n)}
        report("NoutMutation", requested=deltas, changes=changes)
        return new
