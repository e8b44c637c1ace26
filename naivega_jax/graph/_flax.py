"""Export a graph as a ``flax.linen`` module, to compose the found model into ordinary Flax code."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np

from .._random import host_rng
from ._graph import Graph, _pack_inputs, _unpack, forward
from ._spec import GraphSpec


class GraphModule(nn.Module):
    """A ``flax.linen`` module computing a graph spec.

    Variables: ``{"params": {vertex: {...}}, "batch_stats": {vertex: {...}}}`` laid out as ``graph.params`` and
    ``graph.state``. Call ``module.apply(variables, x)`` for inference, and
    ``module.apply(variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])`` in training.

    Keys: the module uses the key of its scope's rng stream as it is, the way ``ng`` uses a key. At the top level
    that is the key given to ``init``/``apply``, so ``module.init(key, x)`` draws the variables
    ``ng.graph.init_graph(key, spec)`` draws, and ``module.apply(variables, x, train=True, rngs={"dropout": key})``
    equals ``ng.apply(graph, x, train=True, key=key)``. As a submodule it is the key flax derives for the
    submodule's path. A second call of the same module within one ``apply`` draws a fresh dropout key with
    ``make_rng``, so repeated calls never share a mask. ``init`` runs the ops' numpy initialisers in a host
    callback that ``jax.jit`` and ``jax.vmap`` accept: ``jax.vmap(module.init, in_axes=(0, None))(keys, x)``
    initialises one model per key.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> variables = ng.graph.GraphModule(g.spec).init(jax.random.key(1), jnp.ones((1, 5)))
        >>> variables["params"]["d"]["kernel"].shape
        (5, 3)
        >>> keys = jax.random.split(jax.random.key(2), 4)
        >>> ensemble = jax.vmap(ng.graph.GraphModule(g.spec).init, in_axes=(0, None))(keys, jnp.ones((1, 5)))
        >>> ensemble["params"]["d"]["kernel"].shape
        (4, 5, 3)
    """

    spec: GraphSpec

    @nn.compact
    def __call__(self, *xs: Any, train: bool = False) -> Any:
        params, state = {}, {}
        for v in self.spec.vertices:
            name = v.name
            # flax hands the init function a key folded with a counter; the stream's own key is the one ng uses
            if v.op.param_axes():
                params[name] = self.param(name, lambda k, n=name: _traceable_init(self._init_key(k), self.spec, n)[0])
            if v.op.state_axes():
                var = self.variable(
                    "batch_stats", name, lambda n=name: _traceable_init(self._init_key(), self.spec, n)[1]
                )
                state[name] = var.value
        graph = Graph(self.spec, params, state)
        ys, new_state = forward(graph, _pack_inputs(self.spec, xs), train=train, key=self._dropout_key(train))
        if train and not self.is_initializing():
            for name in state:
                self.put_variable("batch_stats", name, new_state[name])
        return _unpack(self.spec, ys)

    def _stream_key(self, stream: str) -> jax.Array:
        """The key of rng stream ``stream`` for this module's scope, before flax's per-draw folding."""
        # flax types scope as Optional (an unbound module has none); these methods run only inside init/apply
        return self.scope.rngs[stream].as_jax_rng()  # type: ignore[union-attr]

    def _init_key(self, given: jax.Array | None = None) -> jax.Array:
        if self.has_rng("params"):
            return self._stream_key("params")
        # flax also calls a param's init function, with a dummy key, to check the shape of one it already has
        return given if given is not None else self.make_rng("params")

    def _dropout_key(self, train: bool) -> jax.Array | None:
        if not (train and self.has_rng("dropout")):
            return None
        key = self.make_rng("dropout")
        counter = self.scope.rng_counters["dropout"]  # type: ignore[union-attr]  # flax: Optional scope, bound here
        return self._stream_key("dropout") if counter == 1 else key


def _traceable_init(key: jax.Array, spec: GraphSpec, name: str):
    """One vertex's fresh ``(params, state)`` from ``key``, as ``ng.graph.init_graph`` draws them, traceable.

    The ops initialise with numpy generators (user ops registered with ``ng.graph.register_op`` too), so a pure-JAX
    init could not reproduce ``ng``'s values: the draw runs in a host callback. Under ``jax.vmap`` the callback
    receives every key of the batch at once (``broadcast_all``) and initialises one vertex per key.
    """
    op, in_shapes = spec[name].op, spec.input_shapes(name)
    zeros = op.init(np.random.default_rng(0), in_shapes, "zero")
    shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), zeros)

    def host(bits):
        bits = np.asarray(bits, np.uint32)
        batch = bits.shape[:-1]
        draws = [op.init(host_rng(b, name), in_shapes, "default") for b in bits.reshape(-1, bits.shape[-1])]
        return jax.tree_util.tree_map(lambda *a: np.stack(a).reshape(batch + a[0].shape), *draws)

    return jax.pure_callback(host, shapes, jax.random.key_data(key), vmap_method="broadcast_all")


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
