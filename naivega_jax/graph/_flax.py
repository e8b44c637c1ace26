"""Export a graph as a ``flax.linen`` module, to compose the found model into ordinary Flax code."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np

from ._graph import Graph, _pack_inputs, _unpack, forward, init_vertex
from ._spec import GraphSpec


class GraphModule(nn.Module):
    """A ``flax.linen`` module computing a graph spec.

    Variables: ``{"params": {vertex: {...}}, "batch_stats": {vertex: {...}}}`` laid out as ``graph.params`` and
    ``graph.state``. Call ``module.apply(variables, x)`` for inference, and
    ``module.apply(variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])`` in training.
    ``module.init`` draws fresh parameters the way ``ng.build_graph`` does.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> variables = ng.GraphModule(g.spec).init(jax.random.key(1), jnp.ones((1, 5)))
        >>> variables["params"]["d"]["kernel"].shape
        (5, 3)
    """

    spec: GraphSpec

    @nn.compact
    def __call__(self, *xs: Any, train: bool = False) -> Any:
        params, state = {}, {}
        for v in self.spec.vertices:
            if not v.op.param_axes() and not v.op.state_axes():
                continue
            name = v.name
            if v.op.param_axes():
                params[name] = self.param(name, lambda key, n=name: _traceable_init(key, self.spec, n)[0])
            if v.op.state_axes():
                var = self.variable(
                    "batch_stats",
                    name,
                    lambda n=name: _traceable_init(self.make_rng("params"), self.spec, n)[1],
                )
                state[name] = var.value
        key = self.make_rng("dropout") if train and self.has_rng("dropout") else None
        graph = Graph(self.spec, params, state)
        ys, new_state = forward(graph, _pack_inputs(self.spec, xs), train=train, key=key)
        if train and not self.is_initializing():
            for name in state:
                self.put_variable("batch_stats", name, new_state[name])
        return _unpack(self.spec, ys)


def _traceable_init(key: jax.Array, spec: GraphSpec, name: str):
    """``init_vertex`` behind ``jax.pure_callback``, so ``module.init`` also works under ``jax.jit``."""
    zeros = spec[name].op.init(np.random.default_rng(0), spec.input_shapes(name), "zero")
    shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), zeros)

    def host(bits):
        return jax.tree_util.tree_map(np.asarray, init_vertex(np.asarray(bits, np.uint32), spec, name))

    return jax.pure_callback(host, shapes, jax.random.key_data(key))


def to_flax(graph: Graph) -> tuple[GraphModule, dict[str, Any]]:
    """A ``flax.linen`` module and its variables with ``module.apply(variables, x) == graph(x)``.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> module, variables = ng.to_flax(g)
        >>> x = jnp.ones((2, 5))
        >>> bool(np.allclose(module.apply(variables, x), g(x)))
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_flax: graph must be an ng.Graph, got {type(graph).__name__}")
    variables: dict[str, Any] = {"params": jax.tree_util.tree_map(lambda a: a, graph.params)}
    if graph.state:
        variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a, graph.state)
    return GraphModule(graph.spec), variables
