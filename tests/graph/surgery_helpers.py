"""Shared builders for the size-solver and surgery tests."""

import jax
import jax.numpy as jnp
import numpy as np

import naivega_jax as ng
from naivega_jax.graph._validate import validate_graph


def julia_kernel(nout: int, nin: int) -> jnp.ndarray:
    """The kernel (in, out) of a Julia weight (out x in) holding its column-major linear index 1, 2, ..."""
    w = np.arange(1, nout * nin + 1, dtype=np.float32).reshape(nin, nout).T
    return jnp.asarray(w.T)


def with_kernels(graph: ng.Graph, fill) -> ng.Graph:
    """The graph with every Dense kernel replaced by ``fill(nout, nin)``."""
    params = dict(graph.params)
    for name in graph.vertex_names:
        if isinstance(graph.op(name), ng.Dense):
            params[name] = {**params[name], "kernel": fill(graph.nout(name), graph.nin(name)[0])}
    return graph.replace(params=params)


def ones_kernel(nout: int, nin: int) -> jnp.ndarray:
    return jnp.ones((nin, nout), jnp.float32)


def lin(name, nout, *inputs):
    """The tutorial's toy linear layer: identity activation, no bias."""
    return ng.vertex(name, ng.Dense(nout, use_bias=False), *inputs)


def snapshot(graph: ng.Graph):
    """A deep copy of a graph's arrays, to check that surgery never modifies its input."""
    return graph.spec, jax.tree_util.tree_map(np.array, (graph.params, graph.state))


def assert_unchanged(graph: ng.Graph, snap) -> None:
    spec, (params, state) = snap
    assert graph.spec == spec
    now = jax.tree_util.tree_map(np.array, (graph.params, graph.state))
    assert jax.tree_util.tree_structure(now) == jax.tree_util.tree_structure((params, state))
    for a, b in zip(jax.tree_util.tree_leaves(now), jax.tree_util.tree_leaves((params, state))):
        np.testing.assert_array_equal(a, b)


def valid(graph: ng.Graph) -> ng.Graph:
    return validate_graph(graph)
