"""Export a graph as a ``flax.nnx`` module, to train or compose the found model in nnx code, and take it back."""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from ._graph import Graph, _pack_inputs, _unpack, forward
from ._ops_shape import Dropout
from ._spec import GraphSpec

Rngs = nnx.Rngs | nnx.RngStream | jax.Array | None


class NnxGraphModule(nnx.Module):
    """A ``flax.nnx`` module computing a graph: make one with ``ng.to_nnx``, take the graph back with ``ng.from_nnx``.

    Variables: ``model.params[vertex][name]`` are ``nnx.Param`` (the graph's ``params``),
    ``model.batch_stats[vertex][name]`` are ``nnx.BatchStat`` (the graph's ``state``), so
    ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` trains the parameters only while a training call updates the
    running statistics. ``model.spec`` is the graph's static ``GraphSpec``.

    ``model(x, train=False)`` equals ``graph(x)``; ``model(x, train=True, rngs=key)`` equals
    ``ng.apply(graph, x, train=True, key=key)[0]`` and updates the batch statistics as ``ng.apply`` does.
    Dropout's key, as in ``nnx.Dropout``: ``rngs`` given to the call, else the stream given to ``ng.to_nnx``. A jax
    key is used as it is; an ``nnx.Rngs`` (its ``dropout`` stream) or ``nnx.RngStream`` gives its next key.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> from flax import nnx
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("bn", ng.BatchNorm(), inp))
        >>> model = ng.to_nnx(g)
        >>> type(model.params["bn"]["scale"]).__name__, type(model.batch_stats["bn"]["mean"]).__name__
        ('Param', 'BatchStat')
        >>> _ = model(jnp.ones((2, 5)), train=True)
        >>> [round(m, 3) for m in model.batch_stats["bn"]["mean"][...].tolist()]
        [0.1, 0.1, 0.1, 0.1, 0.1]
    """

    def __init__(self, graph: Graph, *, rngs: nnx.Rngs | nnx.RngStream | None = None):
        self.spec: GraphSpec = graph.spec
        self.params = nnx.data({v: {k: nnx.Param(a) for k, a in p.items()} for v, p in graph.params.items()})
        self.batch_stats = nnx.data({v: {k: nnx.BatchStat(a) for k, a in s.items()} for v, s in graph.state.items()})
        # nnx.Dropout's convention: the module owns a fork of the dropout stream, so its draws don't shift others'
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs["dropout"].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"to_nnx: rngs must be an nnx.Rngs, an nnx.RngStream or None, got {rngs!r}")

    def __call__(self, *xs: Any, train: bool = False, rngs: Rngs = None) -> Any:
        key = self._dropout_key(rngs) if train else None
        if key is None and train and _has_dropout(self.spec):
            raise ValueError(
                "NnxGraphModule: train=True on a graph with Dropout needs rngs: a jax key "
                "(model(x, train=True, rngs=key)) or a stream (ng.to_nnx(graph, rngs=nnx.Rngs(dropout=seed)))"
            )
        ys, new_state = forward(self._graph(), _pack_inputs(self.spec, xs), train=train, key=key)
        if train:
            for v, stats in self.batch_stats.items():
                for k, var in stats.items():
                    var[...] = new_state[v][k]
        return _unpack(self.spec, ys)

    def _graph(self) -> Graph:
        params = {v: {k: var.get_value() for k, var in p.items()} for v, p in self.params.items()}
        state = {v: {k: var.get_value() for k, var in s.items()} for v, s in self.batch_stats.items()}
        return Graph(self.spec, params, state)

    def _dropout_key(self, rngs: Rngs) -> jax.Array | None:
        rngs = self.rngs if rngs is None else rngs
        if rngs is None or isinstance(rngs, jax.Array):
            return rngs
        if isinstance(rngs, nnx.Rngs):
            return rngs["dropout"]()
        if isinstance(rngs, nnx.RngStream):
            return rngs()
        raise TypeError(f"NnxGraphModule: rngs must be a jax key, an nnx.Rngs, an nnx.RngStream or None, got {rngs!r}")


def _has_dropout(spec: GraphSpec) -> bool:
    return any(isinstance(v.op, Dropout) and v.op.rate > 0 for v in spec.vertices)


def to_nnx(graph: Graph, *, rngs: nnx.Rngs | nnx.RngStream | None = None) -> NnxGraphModule:
    """A ``flax.nnx`` module holding ``graph``'s arrays, with ``model(x) == graph(x)``.

    ``rngs`` (optional) is the dropout stream for training calls that pass none; see ``NnxGraphModule``.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, optax, naivega_jax as ng
        >>> from flax import nnx
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> model = ng.to_nnx(g)
        >>> x = jnp.ones((2, 5))
        >>> bool(np.allclose(model(x), g(x)))
        True
        >>> optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
        >>> loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x, train=True) ** 2))(model)
        >>> _ = optimizer.update(model, grads)
        >>> bool(jnp.mean(model(x) ** 2) < loss)
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_nnx: graph must be an ng.Graph, got {type(graph).__name__}")
    return NnxGraphModule(graph, rngs=rngs)


def from_nnx(model: NnxGraphModule) -> Graph:
    """The graph a ``flax.nnx`` module made by ``ng.to_nnx`` holds now: its spec, params and batch statistics.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> back = ng.from_nnx(ng.to_nnx(g))
        >>> back.spec == g.spec, bool(np.array_equal(back.params["d"]["kernel"], g.params["d"]["kernel"]))
        (True, True)
    """
    if not isinstance(model, NnxGraphModule):
        raise TypeError(
            f"from_nnx: model must be an ng.graph.NnxGraphModule made by ng.to_nnx, got {type(model).__name__}"
        )
    return model._graph()
