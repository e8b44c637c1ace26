import dataclasses
import itertools

import numpy as np

import naivega_jax as ng
from naivega_jax.mutation._base import report


@dataclasses.dataclass(frozen=True)
class VertexProbe(ng.Mutation):
    """A vertex-level no-op that reports the names it was called with."""

    tag: str = "probe"
    vertex_level = True

    def __call__(self, key, graph, names):
        report(self.tag, names=list(names))
        return graph


@dataclasses.dataclass(frozen=True)
class EntityProbe(ng.Mutation):
    """An entity no-op that reports the entity it was called with."""

    tag: str = "probe"
    target = "batch_size"

    def __call__(self, key, x):
        report(self.tag, x=x)
        return x


def probed(events, tag="probe"):
    """The entities (or name lists) each probe call saw, in order."""
    return [e.get("names", e.get("x")) for e in events if e["mutation"] == tag]


class MockUniform:
    """Replaces ``_draw.uniform`` with a cycle of fixed values (upstream's MockRng)."""

    def __init__(self, values):
        self.it = itertools.cycle(values)

    def __call__(self, key, size=None, *salts):
        if size is None:
            return float(next(self.it))
        return np.array([next(self.it) for _ in range(size)])


def dense_chain(key, nin, *nouts, names=None, activation="identity"):
    inp = ng.input_vertex("in", shape=(nin,))
    v = inp
    for i, n in enumerate(nouts):
        v = ng.vertex(names[i] if names else f"d{i + 1}", ng.Dense(n, activation=activation), v)
    return ng.build_graph(key, inputs=inp, outputs=v)
