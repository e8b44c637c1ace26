"""The traced train step every graph shares, and what it is called with (see ``_engine`` for the design).

One module-level jitted step (``_train_step``; ``_train_epoch`` scans it over an epoch) takes the graph, the optax
state and a batch as arguments; ``_initial_carry`` builds its first carry on the host; ``FLAT`` and ``_Layout``
decide what the traced step keeps in one flat vector.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import ShapeError
from ..graph import IMMUTABLE, Graph, utility_ewma, utility_probes
from ..graph.internal import EPS, UTILITY, forward
from ._optimisers import AdamW, Optax, Optimiser, OptimiserChain, ShieldedOpt, WeightDecay

# ---- one flat parameter vector ------------------------------------------------------------------------------------

#: What the traced step keeps in one flat vector (see ``_Layout``): ``"optimiser"`` (default: gradients and optimiser
#: moments; the parameters stay a tree), ``"params"`` (the parameters too) or None (nothing). On XLA:CPU ``"params"``
#: saved 15-30% of the compile time but slowed the steps of the search's graphs by 15-45% (slicing the vector for
#: every layer); ``"optimiser"`` keeps the layers' arrays and still turns the per-array optimiser loops into a few
#: (benchmarks/RESULTS.md).
FLAT: str | None = "optimiser"
FLAT_MODES = (None, "optimiser", "params")


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where each parameter array lives in one flat vector (static: part of the compile-cache key).

    With the parameters (and so the gradients and every optimiser moment) in one vector, the optimiser update is a
    handful of fused loops instead of ~3 per parameter array. XLA:CPU compiles every fused loop as its own kernel,
    so a train step of the search's graphs has 15-30% fewer kernels and compiles 15-30% faster; but slicing the
    vector for every layer made the steps of 20-25-vertex graphs at batch 16 15-45% slower on XLA:CPU
    (benchmarks/RESULTS.md), so by default (``FLAT = "optimiser"``) only the gradients and the optimiser moments are
    flat and the layers read their own arrays. Only the traced step sees the vector: graphs and optimiser states
    going in and out of ``train_graph`` keep their per-vertex trees.
    """

    entries: tuple[tuple[str, str, tuple[int, ...]], ...]
    dtype: str
    params_flat: bool = False

    @functools.cached_property
    def offsets(self) -> tuple[int, ...]:
        return tuple(np.cumsum([0] + [math.prod(shape) for _, _, shape in self.entries]).tolist())

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def unravel(self, flat: jax.Array) -> dict[str, dict[str, jax.Array]]:
        """The parameter tree, traced (slices of ``flat``)."""
        tree: dict[str, dict[str, Any]] = {}
        for (vertex, name, shape), start, stop in zip(self.entries, self.offsets, self.offsets[1:]):
            tree.setdefault(vertex, {})[name] = flat[start:stop].reshape(shape)
        return tree

    def ravel(self, tree: Mapping[str, Mapping[str, jax.Array]]) -> jax.Array:
        """The flat vector of a (traced) tree of this layout."""
        return jnp.concatenate([jnp.reshape(tree[v][n], (-1,)) for v, n, _ in self.entries])

    def ravel_host(self, params: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
        leaves = jax.device_get([params[v][n] for v, n, _ in self.entries])
        return np.concatenate([np.asarray(a, self.dtype).reshape(-1) for a in leaves])

    def unravel_host(self, flat: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        tree: dict[str, dict[str, Any]] = {}
        for (vertex, name, shape), start, stop in zip(self.entries, self.offsets, self.offsets[1:]):
            tree.setdefault(vertex, {})[name] = flat[start:stop].reshape(shape)
        return tree

    def tree_state(self, state: Any) -> Any:
        """An optimiser state over the flat vector as the state over the parameter tree (same leaves, on device)."""
        flat = jax.device_get(state)
        tree = jax.tree_util.tree_map(
            lambda a: self.unravel_host(np.asarray(a)) if np.shape(a) == (self.size,) else a, flat
        )
        return jax.device_put(tree)


_LAYOUTS: collections.OrderedDict[Any, _Layout | None] = collections.OrderedDict()
_LAYOUTS_LOCK = threading.Lock()


def _tree_only(optimiser: Optimiser) -> bool:
    """Whether the optimiser must see the parameter tree: a plain optax transformation may look at arrays one by one
    (LAMB's trust ratio, ``optax.masked``), which one flat vector would silently change."""
    if isinstance(optimiser, OptimiserChain):
        return any(_tree_only(o) for o in optimiser.optimisers)
    if isinstance(optimiser, ShieldedOpt):
        return _tree_only(optimiser.optimiser)
    return isinstance(optimiser, Optax)


def _layout(params: Any, optimiser: Optimiser | None = None) -> _Layout | None:
    """The flat layout of ``params`` (a dict of dicts of arrays of one float dtype) for ``FLAT``, or None to train
    the tree (always for an ``optimiser`` that contains a plain optax transformation)."""
    if FLAT not in FLAT_MODES:
        raise ValueError(f"_step.FLAT must be one of {FLAT_MODES}, got {FLAT!r}")
    if FLAT is None or not isinstance(params, Mapping) or (optimiser is not None and _tree_only(optimiser)):
        return None
    leaves, treedef = jax.tree_util.tree_flatten(params)
    key = (FLAT, treedef, tuple((np.shape(a), str(getattr(a, "dtype", np.asarray(a).dtype))) for a in leaves))
    with _LAYOUTS_LOCK:
        if key in _LAYOUTS:
            _LAYOUTS.move_to_end(key)
            return _LAYOUTS[key]
    layout = None
    dtypes = {dtype for _, dtype in key[2]}
    nested = all(
        isinstance(p, Mapping) and all(not isinstance(a, Mapping) for a in p.values()) for p in params.values()
    )
    if leaves and nested and len(dtypes) == 1 and np.issubdtype(np.dtype(next(iter(dtypes))), np.floating):
        entries = tuple(
            (vertex, name, tuple(np.shape(params[vertex][name])))
            for vertex in sorted(params)
            for name in sorted(params[vertex])
        )
        layout = _Layout(entries, next(iter(dtypes)), params_flat=FLAT == "params")
    with _LAYOUTS_LOCK:
        _LAYOUTS[key] = layout
        while len(_LAYOUTS) > 256:
            _LAYOUTS.popitem(last=False)
    return layout


# ---- the traced computation -------------------------------------------------------------------------------------


def _labels(out: jax.Array, y: jax.Array) -> jax.Array | None:
    if out.ndim != 2:
        return None
    if y.ndim == 2:
        return jnp.argmax(y, axis=-1)
    if y.ndim == 1 and jnp.issubdtype(y.dtype, jnp.integer):
        return y
    return None


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(mask > 0, values, 0.0)) / jnp.maximum(jnp.sum(mask), 1.0)


def _per_example(loss: Callable, out: Any, y: jax.Array) -> jax.Array:
    """``loss(out, y)`` as one value per example: ``(batch,)`` as it is, the output's shape (elementwise) averaged
    over all but the batch axis. Any other shape is refused when the step is traced: a loss that broadcasts
    (``(o - y) ** 2`` with outputs ``(B, 1)`` and targets ``(B,)`` gives ``(B, B)``) would train every example
    against every target and silently learn the mean."""
    per = loss(out, y)
    batch = y.shape[0]
    shape = tuple(np.shape(per))
    accepted: list[tuple[int, ...]] = [(batch,)]
    if isinstance(out, jax.Array) and out.shape != (batch,):
        accepted.append(tuple(out.shape))
    if shape not in accepted:
        expected = f"{accepted[0]} (one value per example)"
        if len(accepted) > 1:
            expected += f" or {accepted[1]} (the outputs' shape, averaged per example)"
        scalar = "; a scalar cannot be masked: padded batches need per-example values" if not shape else ""
        raise ShapeError(
            f"loss {getattr(loss, '__name__', loss)!r} returned shape {shape} for outputs of shape {_shapes(out)} "
            f"and targets of shape {tuple(y.shape)}; expected {expected}{scalar}. A loss that broadcasts, such as "
            "(o - y) ** 2 with outputs (B, 1) and targets (B,), gives (B, B): make the shapes agree in the loss"
        )
    return per.reshape(batch, -1).mean(axis=1)


def _shapes(out: Any) -> Any:
    return tuple(out.shape) if isinstance(out, jax.Array) else [tuple(o.shape) for o in out]


def _correct(out: Any, y: jax.Array, batch: int) -> jax.Array:
    labels = _labels(out, y) if isinstance(out, jax.Array) else None
    if labels is None:
        return jnp.zeros((batch,), bool)
    return jnp.argmax(out, axis=-1) == labels


def _uses_params(optimiser: Optimiser) -> bool:
    """Whether the optimiser's update reads the parameters (weight decay does; the other specs only the gradients;
    a plain optax transformation may)."""
    if isinstance(optimiser, OptimiserChain):
        return any(_uses_params(o) for o in optimiser.optimisers)
    if isinstance(optimiser, ShieldedOpt):
        return _uses_params(optimiser.optimiser)
    return isinstance(optimiser, (AdamW, WeightDecay, Optax))


def _update_utilities(graph: Graph, state: dict, probe_grads: Mapping[str, jax.Array], mask: jax.Array) -> dict:
    """``ng.graph.update_activation_utility`` (default alpha, padded rows masked) for every probed vertex at once: the
    per-vertex probe gradients side by side in one ``(batch, sum of nout)`` array, so XLA compiles a couple of loops
    instead of ~3 per vertex (the same arithmetic, element by element)."""
    names = sorted(probe_grads)
    spatial = np.concatenate(
        [np.full((graph.spec.nout(n),), float(math.prod(graph.spec[n].shape[:-1])), np.float32) for n in names]
    )
    grads = jnp.concatenate([probe_grads[n] for n in names], axis=1)
    m = jnp.asarray(mask, jnp.float32).reshape(-1, 1)
    new = jnp.sum((jnp.abs(grads) / spatial) * m, axis=0) / jnp.maximum(jnp.sum(m), 1.0)
    old = jnp.concatenate([state[n][UTILITY] for n in names])
    updated = utility_ewma(old, new)
    state = dict(state)
    start = 0
    for n in names:
        stop = start + graph.spec.nout(n)
        state[n] = {**state[n], UTILITY: updated[start:stop].astype(state[n][UTILITY].dtype)}
        start = stop
    return state


def _step_body(carry, batch, key, skeleton: Optimiser, loss: Callable, layout: _Layout | None = None):
    graph, opt_state, ok = carry
    xs, y, mask, index = batch
    layout = None if _tree_only(skeleton) else layout  # as ``_initial_carry`` built the state
    step_key = jax.random.fold_in(key, index)
    # Vertices that store an activation-contribution utility get zero probes; their gradients give the utility.
    probes = utility_probes(graph, mask.shape[0])
    params_flat = layout is not None and layout.params_flat

    def objective(params, probes):
        tree = layout.unravel(params) if params_flat else params
        outs, state = forward(graph.replace(params=tree), xs, train=True, key=step_key, probes=probes or None)
        out = outs[0] if len(outs) == 1 else outs
        return _masked_mean(_per_example(loss, out, y), mask), (state, out)

    (value, (state, out)), (grads, probe_grads) = jax.value_and_grad(objective, (0, 1), has_aux=True)(
        graph.params, probes
    )
    if layout is None or params_flat:
        updates, new_opt_state = skeleton.to_optax().update(grads, opt_state, graph.params)
        params = optax.apply_updates(graph.params, updates)
    else:
        flat_params = layout.ravel(graph.params) if _uses_params(skeleton) else None
        updates, new_opt_state = skeleton.to_optax().update(layout.ravel(grads), opt_state, flat_params)
        params = optax.apply_updates(graph.params, layout.unravel(updates))
    if probes:
        state = _update_utilities(graph, state, probe_grads, mask)
    # Only a flag: selecting the old values on every leaf would add ~30% to the compile time, and a failed
    # candidate gets its untrained graph back anyway (``train_graph``).
    carry = (graph.replace(params=params, state=state), new_opt_state, ok & jnp.isfinite(value))
    # one output per step, the loss then each row's correctness: every output buffer costs ~40 us to fetch on CPU
    return carry, jnp.concatenate([value[None], _correct(out, y, mask.shape[0]).astype(value.dtype)])


@functools.partial(jax.jit, static_argnames=("skeleton", "loss", "layout"), donate_argnums=0)
def _train_step(carry, batch, key, *, skeleton, loss, layout=None):
    return _step_body(carry, batch, key, skeleton, loss, layout)


@functools.partial(jax.jit, static_argnames=("skeleton", "loss", "layout"), donate_argnums=0)
def _train_epoch(carry, batches, key, *, skeleton, loss, layout=None):
    return jax.lax.scan(lambda c, b: _step_body(c, b, key, skeleton, loss, layout), carry, batches)


def _hyper_values(optimiser: Optimiser) -> Any:
    """The spec's injected hyperparameter values as a pytree mirroring chains (float32, like the injected state)."""
    if isinstance(optimiser, OptimiserChain):
        return tuple(_hyper_values(o) for o in optimiser.optimisers)
    if isinstance(optimiser, ShieldedOpt):
        return _hyper_values(optimiser.optimiser)
    return {name: np.float32(value) for name, value in optimiser._injected().items()}


def _with_hyper(skeleton: Optimiser, state: Any, values: Any) -> Any:
    """``state`` with the injected hyperparameters set to ``values``; a plain optax transformation injects none."""
    if isinstance(skeleton, OptimiserChain):
        return tuple(_with_hyper(o, s, v) for o, s, v in zip(skeleton.optimisers, state, values))
    if isinstance(skeleton, Optax):
        return state
    return state._replace(hyperparams=dict(values))


@jax.jit
def _gather(data, idx):
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), data)


@jax.jit
def _eval_batch(graph, xs, y, mask):
    outs, _ = forward(graph, xs, train=False, key=None)
    correct = _correct(outs[0] if len(outs) == 1 else outs, y, mask.shape[0])
    return jnp.sum(jnp.where(mask > 0, correct, False))


def _with_utility(graph: Graph) -> Graph:
    """``ng.graph.init_activation_utility`` on the host (its eager ``jnp.full`` compiles a kernel per new width)."""
    state: dict[str, dict[str, Any]] = dict(graph.state)
    for v in graph.spec.vertices:
        entry = state.get(v.name, {})
        if v.op.trait != IMMUTABLE and UTILITY not in entry:
            state[v.name] = {**entry, UTILITY: np.full((v.nout,), EPS, np.float32)}
    return graph.replace(state=state)


def _initial_carry(
    graph: Graph,
    optimiser: Optimiser,
    layout: _Layout | None = None,
    opt_state: Any = None,
    where: str = "train_graph",
) -> tuple[Graph, Any, jax.Array]:
    """A fresh copy of the graph (the steps donate it), the optimiser state, and the all-finite flag; with a
    ``layout``, the graph's params are one flat vector and the optimiser state is over that vector.

    The state is fresh, or ``opt_state`` (tree form, checked against the optimiser's init for this graph, copied)
    with the spec's current injected hyperparameters. A fresh state is built on the host: eager ``jnp`` ops
    (optax's ``init``, ``jnp.copy``) compile one kernel per new array shape, ~40 ms each on CPU, which every mutated
    candidate would pay. Every optax state our specs build starts at zero except the injected hyperparameters (a
    test checks this against optax's own ``init`` for every spec); a plain optax transformation's ``init`` runs as
    it is.
    """
    skeleton = optimiser.skeleton()
    if _tree_only(skeleton):
        layout = None
    flat = jax.ShapeDtypeStruct((layout.size,), layout.dtype) if layout is not None else None
    if opt_state is not None:
        state = _given_state(skeleton, graph.params, layout, opt_state, where)
    elif _tree_only(skeleton):  # a plain optax state need not start at zero: optax's own init
        state = jax.device_get(skeleton.to_optax().init(graph.params))
    else:
        shapes = _state_shapes(skeleton, graph.params if flat is None else flat)
        state = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    state = _with_hyper(skeleton, state, _hyper_values(optimiser))
    if layout is not None and layout.params_flat:
        graph = graph.replace(params=layout.ravel_host(graph.params))
    return jax.device_put((graph, state, np.bool_(True)), may_alias=False)


def _given_state(skeleton: Optimiser, params: Any, layout: _Layout | None, opt_state: Any, where: str) -> Any:
    """``opt_state`` (tree form) on the host, checked against ``skeleton``'s init for ``params`` and moved into
    ``layout``'s flat vector where the engine uses one."""
    expected = _state_shapes(skeleton, params)
    _check_state(opt_state, expected, skeleton, where)
    state = jax.device_get(opt_state)
    if layout is None:
        return jax.tree_util.tree_map(np.asarray, state)
    flat_def = jax.tree_util.tree_structure(_state_shapes(skeleton, jax.ShapeDtypeStruct((layout.size,), layout.dtype)))
    # jaxlib ships no type stub for PyTreeDef, so the checker cannot see its methods
    parts = flat_def.flatten_up_to(state)  # type: ignore[attr-defined]
    kinds = flat_def.flatten_up_to(expected)  # type: ignore[attr-defined]
    leaves = [layout.ravel_host(p) if isinstance(k, Mapping) else np.asarray(p) for p, k in zip(parts, kinds)]
    return jax.tree_util.tree_unflatten(flat_def, leaves)


def _check_state(opt_state: Any, expected: Any, skeleton: Optimiser, where: str) -> None:
    """One-line ``ValueError`` naming ``opt_state`` and its first difference from the ``expected`` shapes."""
    got, got_def = jax.tree_util.tree_flatten_with_path(opt_state)
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    if got_def != want_def:  # type: ignore[operator]  # jaxlib ships no type stub for PyTreeDef
        got_paths = [jax.tree_util.keystr(p) for p, _ in got]
        want_paths = [jax.tree_util.keystr(p) for p, _ in want]
        detail = next(
            (
                f"leaf {i} is opt_state{g}, expected opt_state{w}"
                for i, (g, w) in enumerate(zip(got_paths, want_paths))
                if g != w
            ),
            f"{len(got_paths)} leaves, expected {len(want_paths)}"
            if len(got_paths) != len(want_paths)
            else f"a {type(opt_state).__name__} node where the init has {type(expected).__name__}",
        )
        raise ValueError(
            f"{where}: opt_state does not match the state of {_name(skeleton)} for this graph: {detail} (pass the "
            "opt_state of an earlier TrainResult for the same graph spec and optimiser type)"
        )
    for (path, leaf), (_, shape) in zip(got, want):
        dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)
        if tuple(np.shape(leaf)) != tuple(shape.shape) or dtype != shape.dtype:
            raise ValueError(
                f"{where}: opt_state{jax.tree_util.keystr(path)} has shape {tuple(np.shape(leaf))} {dtype}, expected "
                f"{tuple(shape.shape)} {shape.dtype} (the init of {_name(skeleton)} for this graph's params)"
            )


def _name(optimiser: Optimiser) -> str:
    if isinstance(optimiser, OptimiserChain):
        return f"OptimiserChain({', '.join(_name(o) for o in optimiser.optimisers)})"
    return type(optimiser).__name__


_STATE_SHAPES: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_STATE_SHAPES_LOCK = threading.Lock()


def _state_shapes(skeleton: Optimiser, params: Any) -> Any:
    """``jax.eval_shape`` of the optax init, memoised: tracing it costs ~10 ms, a tenth of a small epoch."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    key = (skeleton, treedef, tuple((np.shape(a), str(a.dtype)) for a in leaves))
    with _STATE_SHAPES_LOCK:
        shapes = _STATE_SHAPES.get(key)
    if shapes is None:
        shapes = jax.eval_shape(skeleton.to_optax().init, params)
        with _STATE_SHAPES_LOCK:
            _STATE_SHAPES[key] = shapes
            if len(_STATE_SHAPES) > 256:
                _STATE_SHAPES.popitem(last=False)
    return shapes
