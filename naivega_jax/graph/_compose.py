"""Composing graphs with other JAX code: ``partition``/``combine`` (trainable versus the rest) and
``stack``/``unstack`` (graphs of one spec along a leading axis, for ``jax.vmap``)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .._errors import GraphError
from ._graph import Graph
from ._provenance import share
from ._spec import GraphSpec


def _none_like(tree: dict) -> dict:
    return jax.tree_util.tree_map(lambda _: None, tree)


def partition(graph: Graph) -> tuple[Graph, Graph]:
    """Splits ``graph`` into ``(trainable, rest)``, two graphs of the same spec (equinox's ``partition`` habit).

    ``trainable`` holds the parameters: its ``params`` are ``graph.params`` and every leaf of its ``state`` is None.
    ``rest`` holds the rest: its ``state`` (batch-norm running statistics) is ``graph.state`` and every leaf of its
    ``params`` is None. None is an empty pytree to JAX, so ``jax.grad``, ``optax`` (``init``, ``update``,
    ``apply_updates``) and ``jax.tree_util`` see only the parameters of ``trainable``: gradients and optimiser
    updates never reach running statistics. Neither half runs on its own; ``ng.combine(trainable, rest)`` puts the
    graph back together (inside a differentiated function, too). After a training-mode ``ng.apply``, take the new
    running statistics from the returned graph with ``partition`` again.

    Example:
        >>> import jax, jax.numpy as jnp, optax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> bn = ng.vertex("bn", ng.BatchNorm(), inp)
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), bn))
        >>> trainable, rest = ng.partition(g)
        >>> x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
        >>> def loss(t, rest):
        ...     out, new = ng.apply(ng.combine(t, rest), x, train=True)
        ...     return jnp.mean((out - y) ** 2), ng.partition(new)[1]
        >>> opt = optax.adam(1e-3)
        >>> opt_state = opt.init(trainable)
        >>> grads, rest = jax.grad(loss, has_aux=True)(trainable, rest)
        >>> updates, opt_state = opt.update(grads, opt_state)
        >>> g2 = ng.combine(optax.apply_updates(trainable, updates), rest)
        >>> sorted(grads.params), len(jax.tree_util.tree_leaves(grads.state)), g2(x).shape
        (['bn', 'd'], 0, (4, 2))
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"partition: graph must be an ng.Graph, got {type(graph).__name__}")
    return graph.replace(state=_none_like(graph.state)), graph.replace(params=_none_like(graph.params))


def combine(trainable: Graph, rest: Graph) -> Graph:
    """The graph that ``ng.partition`` split into ``trainable`` and ``rest``: parameters from ``trainable``, state
    (batch-norm running statistics) from ``rest``.

    ``trainable`` may be any graph-shaped result of ``jax.grad``/``optax`` on the first half (its state is
    ignored); the two must have equal specs.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> trainable, rest = ng.partition(g)
        >>> bool(jnp.array_equal(ng.combine(trainable, rest)(jnp.ones((1, 3))), g(jnp.ones((1, 3)))))
        True
    """
    for arg, value in (("trainable", trainable), ("rest", rest)):
        if not isinstance(value, Graph):
            raise TypeError(f"combine: {arg} must be an ng.Graph (from ng.partition), got {type(value).__name__}")
    if trainable.spec != rest.spec:
        raise GraphError(
            "combine: trainable and rest must come from graphs of one spec; "
            + spec_difference(trainable.spec, rest.spec)
        )
    return share(Graph(trainable.spec, trainable.params, rest.state), trainable)


def spec_difference(a: GraphSpec, b: GraphSpec) -> str:
    """Describes the first difference between two specs, for error messages ("" when equal)."""
    if a.inputs != b.inputs:
        return f"inputs differ: {list(a.inputs)} versus {list(b.inputs)}"
    if a.outputs != b.outputs:
        return f"outputs differ: {list(a.outputs)} versus {list(b.outputs)}"
    for va, vb in zip(a.vertices, b.vertices):
        if va != vb:
            if va.name != vb.name:
                return f"vertex {va.name!r} stands where the other has {vb.name!r}"
            return f"vertex {va.name!r} differs: {va} versus {vb}"
    if len(a.vertices) != len(b.vertices):
        longer = a if len(a.vertices) > len(b.vertices) else b
        return f"vertex {longer.vertices[min(len(a.vertices), len(b.vertices))].name!r} is in only one of them"
    return ""


def stack(graphs: Sequence[Graph]) -> Graph:
    """One graph whose every leaf stacks the corresponding leaves of ``graphs`` along a new leading axis.

    All graphs must share one spec. The result is meant for ``jax.vmap`` (map over axis 0 of the graph and of the
    data) and ``jax.lax.scan``; ``ng.unstack`` takes it apart again.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> out = ng.vertex("d", ng.Dense(3), inp)
        >>> gs = [ng.build_graph(k, inputs=inp, outputs=out) for k in jax.random.split(jax.random.key(0), 4)]
        >>> stacked = ng.stack(gs)
        >>> stacked.params["d"]["kernel"].shape
        (4, 5, 3)
        >>> jax.vmap(lambda g, x: g(x))(stacked, jnp.ones((4, 2, 5))).shape
        (4, 2, 3)
    """
    graphs = list(graphs) if not isinstance(graphs, Graph) else [graphs]
    if not graphs:
        raise ValueError("stack: graphs must be a non-empty sequence of ng.Graph, got an empty one")
    for i, g in enumerate(graphs):
        if not isinstance(g, Graph):
            raise TypeError(f"stack: graphs[{i}] must be an ng.Graph, got {type(g).__name__}")
    first = graphs[0].spec
    for i, g in enumerate(graphs[1:], start=1):
        if g.spec != first:
            raise GraphError(
                f"stack: every graph must have the spec of graphs[0]; graphs[{i}] differs: "
                f"{spec_difference(first, g.spec)}"
            )
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *graphs)


def unstack(stacked: Graph) -> list[Graph]:
    """The graphs that ``ng.stack`` stacked: one per index of the leading axis of ``stacked``'s leaves.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(5,))
        >>> out = ng.vertex("d", ng.Dense(3), inp)
        >>> gs = [ng.build_graph(k, inputs=inp, outputs=out) for k in jax.random.split(jax.random.key(0), 3)]
        >>> [g.params["d"]["kernel"].shape for g in ng.unstack(ng.stack(gs))]
        [(5, 3), (5, 3), (5, 3)]
    """
    if not isinstance(stacked, Graph):
        raise TypeError(f"unstack: stacked must be an ng.Graph (from ng.stack), got {type(stacked).__name__}")
    leaves, treedef = jax.tree_util.tree_flatten(stacked)
    if not leaves:
        raise ValueError("unstack: stacked has no arrays, so there is no stacking axis to split")
    sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves}
    n = next(iter(sizes))
    if len(sizes) != 1 or n is None:
        raise ValueError(
            f"unstack: stacked must have one leading axis shared by every leaf (from ng.stack); got leading "
            f"sizes {sorted(sizes, key=str)}"
        )
    return [jax.tree_util.tree_unflatten(treedef, [a[i] for a in leaves]) for i in range(n)]
