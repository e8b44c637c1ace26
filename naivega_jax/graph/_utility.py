"""Neuron utility: how much each output neuron of a vertex is worth keeping.

Two measures, as in NaiveNASflux:

* **Weight magnitude** (``weight_utility``): per output neuron, the L2 norm of its fan-in weights plus ``|bias|``;
  batch-norm and scale ``|gamma| + |beta|``; parameter-free size-transparent vertices (add, concat, pools) 0 (their
  neurons get the utility of the vertices they are tied to); other parameter-free vertices 1. NaN/Inf -> -100.
* **Activation contribution** (Molchanov et al. 2016, arXiv 1611.06440): a running average of
  ``u_c = mean_batch |mean_spatial(a * g)|_c`` where ``a`` is the vertex's output and ``g`` the loss gradient with
  respect to it, stored per vertex in ``graph.state[name]["utility"]`` (surgery remaps it like other per-neuron
  state; new neurons get ``eps(float32)``).

Computing the activation contribution inside a jitted train step, without host callbacks:

1. ``graph = ng.graph.init_activation_utility(graph)`` once: every mutable vertex gets ``state[name]["utility"]``
   filled with ``eps(float32)``.
2. In the step, ``probes = ng.graph.utility_probes(graph, batch_size)``: a zeros array ``(batch, nout)`` per vertex with
   a stored utility. Pass them to ``naivega_jax.graph._graph.forward(graph, xs, train=True, key=key,
   probes=probes)``, which multiplies each such vertex's output by ``1 + probe`` (broadcast over spatial axes):
   the values are unchanged, and the gradient of the loss with respect to the probe is ``sum_spatial(a * g)``.
3. Differentiate the loss with respect to ``(params, probes)`` and call
   ``graph = ng.graph.update_activation_utility(graph, probe_grads)`` (pure jnp: EWMA with ``alpha = 0.05``, optional
   mask for padded rows, optional ``every``/``step`` to update every n-th step only).

The default utility of the size solver (``default_utility``) is the stored activation contribution where a vertex
has one, else the weight magnitude.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ._graph import Graph
from ._ops import IMMUTABLE, INVARIANT, STACK
from ._remap import EPS, UTILITY

DEFAULT_ALPHA = 0.05


def weight_utility(graph: Graph, name: str) -> np.ndarray:
    """Weight-magnitude utility of ``name``'s output neurons (see the module docstring), float64 numpy.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> g = g.replace(params={"d": {"kernel": jax.numpy.array([[3.0, 0, 1], [4, 0, 1]]),
        ...                             "bias": jax.numpy.array([0.0, 2, -1])}})
        >>> ng.graph.weight_utility(g, "d").round(3).tolist()
        [5.0, 2.0, 2.414]
    """
    v = graph.spec[name]
    n, op = v.nout, v.op
    params = graph.params.get(name, {})
    axes = op.param_axes()
    used = [(p, out, axes[p].inp) for p in params if p in axes and (out := axes[p].out) is not None]
    if not used:
        value = 0.0 if op.trait in (INVARIANT, STACK) else 1.0
        return np.full(n, value)
    total = np.zeros(n)
    for pname, out_axis, in_axis in used:
        a = np.moveaxis(np.asarray(params[pname], np.float64), out_axis, 0).reshape(n, -1)
        if in_axis is not None or a.shape[1] > 1:
            total += np.sqrt(np.sum(a * a, axis=1))
        else:
            total += np.abs(a[:, 0])
    return np.where(np.isfinite(total), total, -100.0)


def activation_utility(graph: Graph, name: str) -> np.ndarray:
    """The stored activation-contribution utility of ``name`` (float64 numpy; NaN/Inf -> -100).

    Raises ``KeyError`` when the vertex has none (see ``init_activation_utility``).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> g2 = ng.graph.init_activation_utility(g)
        >>> ng.graph.activation_utility(g2, "d").tolist() == [np.finfo(np.float32).eps] * 3
        True
    """
    try:
        u = np.asarray(graph.state[name][UTILITY], np.float64)
    except KeyError:
        raise KeyError(
            f"vertex {name!r} has no stored activation utility; call ng.graph.init_activation_utility"
        ) from None
    return np.where(np.isfinite(u), u, -100.0)


def default_utility(graph: Graph, name: str) -> np.ndarray:
    """The size solver's default: stored activation utility where present, else ``weight_utility``.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> bool((ng.graph.default_utility(g, "d") == ng.graph.weight_utility(g, "d")).all())
        True
    """
    if UTILITY in graph.state.get(name, {}):
        return activation_utility(graph, name)
    return weight_utility(graph, name)


def init_activation_utility(graph: Graph, names: Iterable[str] | None = None) -> Graph:
    """A graph whose vertices (default: every mutable one) store an activation utility of ``eps(float32)``.

    Vertices that already store one keep it.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.graph.init_activation_utility(g).state["d"]["utility"].shape
        (3,)
    """
    spec = graph.spec
    if names is None:
        names = [v.name for v in spec.vertices if v.op.trait != IMMUTABLE]
    state = dict(graph.state)
    for name in names:
        entry = dict(state.get(name, {}))
        if UTILITY not in entry:
            # device_put: jnp.full would compile a kernel per new size (~0.1 s each on CPU).
            entry[UTILITY] = jax.device_put(np.full((spec.nout(name),), EPS, np.float32))
        state[name] = entry
    return graph.replace(state=state)


def utility_probes(graph: Graph, batch_size: int) -> dict[str, jax.Array]:
    """Zero probes ``(batch_size, nout)`` for every vertex that stores an activation utility (traceable).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> ng.graph.utility_probes(ng.graph.init_activation_utility(g), 4)["d"].shape
        (4, 3)
    """
    return {
        name: jnp.zeros((batch_size, graph.spec.nout(name)), jnp.float32)
        for name, entry in graph.state.items()
        if UTILITY in entry
    }


def utility_ewma(old: jax.typing.ArrayLike, new: jax.typing.ArrayLike, alpha: float = DEFAULT_ALPHA) -> jax.Array:
    """Exponential moving average ``alpha * old + (1 - alpha) * new`` (NaiveNASflux ``Ewma``).

    Example:
        >>> import naivega_jax as ng
        >>> [round(v, 4) for v in ng.graph.utility_ewma([1.0, 2, 3, 4], [5.0, 6, 7, 8], 0.3).tolist()]
        [3.8, 4.8, 5.8, 6.8]
    """
    old, new = jnp.asarray(old, jnp.float32), jnp.asarray(new, jnp.float32)
    return alpha * old + (1.0 - alpha) * new


def update_activation_utility(
    graph: Graph,
    probe_grads: Mapping[str, jax.Array],
    *,
    alpha: float = DEFAULT_ALPHA,
    mask: jax.typing.ArrayLike | None = None,
    step: jax.typing.ArrayLike | None = None,
    every: int = 1,
) -> Graph:
    """The graph with each stored utility updated from the gradients of ``utility_probes`` (pure jnp, jittable).

    ``u_new[c] = mean over rows of |grad[row, c]| / spatial size``, which is
    ``mean_batch |mean_spatial(a * g)|``; then ``u <- alpha * u + (1 - alpha) * u_new``. ``mask`` (one bool or 0/1 per
    row) excludes padded rows from the mean. With ``every > 1``, only steps where ``step % every == 0`` update
    (NaiveNASflux ``NeuronUtilityEvery``); other steps keep the old value.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.graph.init_activation_utility(
        ...     ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp)))
        >>> g2 = ng.graph.update_activation_utility(g, {"d": jnp.array([[1.0, -2.0], [3.0, 0.0]])}, alpha=0.5)
        >>> [round(v, 3) for v in g2.state["d"]["utility"].tolist()]
        [1.0, 0.5]
    """
    state = dict(graph.state)
    for name, grad in probe_grads.items():
        shape = graph.spec[name].shape
        spatial = float(np.prod(shape[:-1])) if len(shape) > 1 else 1.0
        contribution = jnp.abs(grad) / spatial
        if mask is None:
            new = jnp.mean(contribution, axis=0)
        else:
            m = jnp.asarray(mask, jnp.float32).reshape(-1, 1)
            new = jnp.sum(contribution * m, axis=0) / jnp.maximum(jnp.sum(m), 1.0)
        entry = dict(state[name])
        old = entry[UTILITY]
        updated = utility_ewma(old, new, alpha)
        if every > 1 and step is not None:
            updated = jnp.where(jnp.asarray(step) % every == 0, updated, old)
        entry[UTILITY] = updated.astype(old.dtype)
        state[name] = entry
    return graph.replace(state=state)
