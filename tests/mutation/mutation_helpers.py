import dataclasses
import itertools

import jax
import numpy as np

import naivega_jax as ng
from naivega_jax.mutation._base import report


@dataclasses.dataclass(frozen=True)
class VertexProbe(ng.mutation.Mutation):
    """A vertex-level no-op that reports the names it was called with."""

    tag: str = "probe"
    vertex_level = True

    def __call__(self, key, graph, names):
        report(self.tag, names=list(names))
        return graph


@dataclasses.dataclass(frozen=True)
class EntityProbe(ng.mutation.Mutation):
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


def dense_graph(key):
    inp = ng.input_vertex("in", shape=(5,))
    d1 = ng.vertex("d1", ng.Dense(8, activation="relu"), inp)
    d2 = ng.vertex("d2", ng.Dense(6), d1)
    d3 = ng.vertex("d3", ng.Dense(4, activation="relu"), d2)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), d3, shield=True))


def conv_graph(key):
    inp = ng.input_vertex("in", shape=(8, 8, 3))
    c1 = ng.vertex("c1", ng.Conv(4, 3), inp)
    bn = ng.vertex("bn", ng.BatchNorm("relu"), c1)
    cat = ng.concat("cat", ng.vertex("c2a", ng.Conv(3, 3), bn), ng.vertex("c2b", ng.Conv(5, 1), bn))
    c3 = ng.vertex("c3", ng.Conv(6, 3, activation="relu"), cat)
    s = ng.add("s", c3, ng.vertex("c4", ng.Conv(6, 1), bn))
    p = ng.vertex("p", ng.MaxPool(2), s)
    gp = ng.vertex("gp", ng.GlobalPool(), p)
    d = ng.vertex("d", ng.Dense(5, activation="relu"), gp)
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("out", ng.Dense(3), d, shield=True))


def fork_graph(key):
    layer = ng.VertexSpace(ng.DenseSpace(range(2, 7), ["relu", "identity"]))
    body = ng.ArchSpaceChain(ng.ForkArchSpace(layer, range(2, 4)), ng.RepeatArchSpace(layer, 2))
    out = ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True)
    return ng.sample_graph(key, ng.ArchSpaceChain(body, out), ng.input_vertex("in", shape=(5,)))


def residual_graph(key):
    conv = ng.VertexSpace(ng.ConvSpace(range(2, 6), [1, 3], activations="relu"))
    body = ng.ArchSpaceChain(conv, ng.ResidualArchSpace(conv), ng.ResidualArchSpace(ng.ForkArchSpace(conv, 2)))
    head = ng.ArchSpaceChain(ng.GlobalPoolSpace(), ng.VertexSpace(ng.DenseSpace(3, "identity"), shielded=True))
    return ng.sample_graph(key, ng.ArchSpaceChain(body, head), ng.input_vertex("in", shape=(6, 6, 2)))


def example_input(graph, n=2):
    return jax.numpy.ones((n, *graph.shape(graph.input_names[0])), jax.numpy.float32) * 0.5


def host_copy(tree):
    return jax.tree_util.tree_map(lambda a: np.array(a, copy=True), tree)


def tree_equal(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    return ta == tb and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))
