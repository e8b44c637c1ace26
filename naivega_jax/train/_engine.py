"""The compile-aware training engine: one jitted train step for every graph, two epoch drivers, evaluation.

Designed around reference/performance.md:
* one module-level jitted step takes the graph, the optax state and a batch as arguments; executables are compiled
  ahead of time and cached by (spec, batch shapes, optimiser skeleton, loss), so equal specs never recompile and a
  learning-rate change (traced optimiser state) compiles nothing;
* every batch has the same shape: the last partial batch is padded (with repeats of real examples, so batch
  statistics stay sensible) and masked out of the loss and the accuracy;
* a NaN/Inf loss is detected on device (a flag in the carry): the loop driver stops at its next check, the scan
  driver after the epoch, and the result says so and returns the input graph;
* compile seconds and train seconds are measured separately on every call;
* compiles are made cheaper: XLA:CPU compiles with its older fusion emitters and LLVM at level 1
  (``_cache.COMPILER_OPTIONS``: about half the compile time of XLA's defaults, steps ~8% slower), and the
  persistent compilation cache is on by default (``ng.set_compilation_cache``), so a rerun, a resumed run or a
  worker reads executables from disk instead of compiling them; the traced step keeps gradients and optimiser
  moments in one flat vector (``FLAT``, ``_Layout``) and updates all activation utilities at once, ~20% fewer
  compiled loops; a call too short to earn back an
  optimised compile gets a fast-compiling one, a long one XLA's slowest-compiling, fastest code (``compile_tier``);
* two epoch drivers: a Python loop over the jitted step, and a whole epoch as one compiled ``lax.scan``. XLA:CPU runs
  convolutions inside a scan 5-34x slower than the loop, so ``choose_driver`` picks the loop on CPU for graphs with
  spatial ops and the scan everywhere else (28x faster than the loop for an MLP on an H200).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._random import host_rng
from ..graph import IMMUTABLE, AvgPool, Conv, Graph, MaxPool, utility_ewma, utility_probes
from ..graph._graph import forward
from ..graph._remap import EPS, UTILITY
from ._cache import CACHE, TIERS, Lookup, choose_tier
from ._optimisers import Adam, AdamW, Optimiser, OptimiserChain, ShieldedOpt, WeightDecay

DRIVERS = ("auto", "loop", "scan")
_SPATIAL_OPS = (Conv, MaxPool, AvgPool)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainResult:
    """What ``train_graph`` returns.

    Attributes:
        graph: the trained graph (parameters and batch-norm state); after a NaN/Inf loss, the input graph
            unchanged (upstream keeps the weights of the step that produced the NaN, which are usually not finite).
        opt_state: the final optax state.
        losses: the mean loss of every step taken, in order (numpy).
        correct: per trained example, in training order, whether the graph's prediction *during training* was
            right (padding excluded); None when the output is not a (batch, classes) array.
        steps: number of steps taken; epochs: number of epochs completed.
        nonfinite: True if a loss was NaN or Inf; failure: then the reason, as upstream words it:
            ``"NaN loss detected when training!"`` (or ``"Inf loss ..."`` when the first bad loss was infinite).
        compile_seconds: seconds spent compiling in this call (0 when every executable came from the cache).
        train_seconds: the rest of the call's wall time (data preparation, steps, waiting for the device).
        compiles, cache_hits: cache misses and hits in this call.
        driver: ``"loop"`` or ``"scan"``.
    """

    graph: Graph
    opt_state: Any
    losses: np.ndarray
    correct: np.ndarray | None
    steps: int
    epochs: int
    nonfinite: bool
    failure: str | None
    compile_seconds: float
    train_seconds: float
    compiles: int
    cache_hits: int
    driver: str

    @property
    def examples_per_second(self) -> float:
        """Training throughput of this call, compile time excluded."""
        n = self.correct.size if self.correct is not None else 0
        return n / self.train_seconds if self.train_seconds > 0 else float("nan")


def choose_driver(graph: Graph, backend: str | None = None) -> str:
    """The epoch driver for ``graph`` on ``backend`` (default: JAX's default backend).

    ``"loop"`` on CPU when the graph has convolutions or pools (XLA:CPU runs them inside a scan on a slow path),
    ``"scan"`` otherwise.

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(8, 1))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("c", ng.Conv(2, 3), inp))
        >>> ng.choose_driver(g, "cpu"), ng.choose_driver(g, "gpu")
        ('loop', 'scan')
    """
    backend = backend or jax.default_backend()
    if backend == "cpu" and any(isinstance(v.op, _SPATIAL_OPS) for v in graph.spec.vertices):
        return "loop"
    return "scan"


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


def _layout(params: Any) -> _Layout | None:
    """The flat layout of ``params`` (a dict of dicts of arrays of one float dtype) for ``FLAT``, or None to train
    the tree."""
    if FLAT not in FLAT_MODES:
        raise ValueError(f"_engine.FLAT must be one of {FLAT_MODES}, got {FLAT!r}")
    if FLAT is None or not isinstance(params, Mapping):
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
    per = loss(out, y)
    if per.ndim == 0:
        raise ValueError(
            "loss must return one value per example (like optax.softmax_cross_entropy_with_integer_labels), "
            "got a scalar: padded batches need per-example losses to mask"
        )
    return per.reshape(per.shape[0], -1).mean(axis=1)


def _correct(out: Any, y: jax.Array, batch: int) -> jax.Array:
    labels = _labels(out, y) if isinstance(out, jax.Array) else None
    if labels is None:
        return jnp.zeros((batch,), bool)
    return jnp.argmax(out, axis=-1) == labels


def _uses_params(optimiser: Optimiser) -> bool:
    """Whether the optimiser's update reads the parameters (weight decay does; the others only the gradients)."""
    if isinstance(optimiser, OptimiserChain):
        return any(_uses_params(o) for o in optimiser.optimisers)
    if isinstance(optimiser, ShieldedOpt):
        return _uses_params(optimiser.optimiser)
    return isinstance(optimiser, (AdamW, WeightDecay))


def _update_utilities(graph: Graph, state: dict, probe_grads: Mapping[str, jax.Array], mask: jax.Array) -> dict:
    """``ng.update_activation_utility`` (default alpha, padded rows masked) for every probed vertex at once: the
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
    """The spec's hyperparameter values as a pytree mirroring chains (float32, like the injected state)."""
    if isinstance(optimiser, OptimiserChain):
        return tuple(_hyper_values(o) for o in optimiser.optimisers)
    if isinstance(optimiser, ShieldedOpt):
        return _hyper_values(optimiser.optimiser)
    return {name: np.float32(getattr(optimiser, name)) for name in optimiser.hyperparameters}


def _with_hyper(skeleton: Optimiser, state: Any, values: Any) -> Any:
    if isinstance(skeleton, OptimiserChain):
        return tuple(_with_hyper(o, s, v) for o, s, v in zip(skeleton.optimisers, state, values))
    return state._replace(hyperparams=dict(values))


@jax.jit
def _gather(data, idx):
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), data)


@jax.jit
def _eval_batch(graph, xs, y, mask):
    outs, _ = forward(graph, xs, train=False, key=None)
    correct = _correct(outs[0] if len(outs) == 1 else outs, y, mask.shape[0])
    return jnp.sum(jnp.where(mask > 0, correct, False))


# ---- host side ----------------------------------------------------------------------------------------------------

_DEVICE_COPIES: dict[tuple[int, Any], tuple[weakref.ref, jax.Array]] = {}


def _on_device(a: Any) -> jax.Array:
    """``a`` as a device array; numpy arrays are transferred once per device (the thread's default device, as
    ``ng.DeviceExecutor`` sets it) and the copy reused while ``a`` lives."""
    if isinstance(a, jax.Array):
        return a
    ident = (id(a), jax.config.jax_default_device)
    try:
        ref = weakref.ref(a, lambda _: _DEVICE_COPIES.pop(ident, None))
    except TypeError:
        return jnp.asarray(a)
    entry = _DEVICE_COPIES.get(ident)
    if entry is not None and entry[0]() is a:
        return entry[1]
    device = jnp.asarray(a)
    _DEVICE_COPIES[ident] = (ref, device)
    return device


def _on_host(a: Any) -> np.ndarray:
    a = np.asarray(a)
    dtype = jax.dtypes.canonicalize_dtype(a.dtype)
    return a if a.dtype == dtype else a.astype(dtype)


def _pack_inputs(graph: Graph, x: Any, where: str) -> tuple[Any, ...]:
    names = graph.spec.inputs
    if isinstance(x, Mapping):
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"{where}: x has no arrays for graph inputs {missing}; got keys {list(x)}")
        xs = tuple(x[n] for n in names)
    elif isinstance(x, (tuple, list)):
        xs = tuple(x)
    else:
        xs = (x,)
    if len(xs) != len(names):
        raise ValueError(f"{where}: the graph takes {len(names)} input(s) {list(names)}, got {len(xs)} array(s)")
    for name, a in zip(names, xs):
        expected = graph.shape(name)
        if tuple(np.shape(a)[1:]) != expected:
            raise ValueError(
                f"{where}: input {name!r} must have shape (n, {', '.join(map(str, expected))}), got {np.shape(a)}"
            )
    return xs


class _Data:
    """The examples and how batches are cut from them.

    On CPU batches are cut on the host with numpy (a device gather or unstack compiles a kernel per data shape,
    0.1-0.8 s each, and the host *is* the device); elsewhere the data moves to the device once and batches are
    gathered there by one cached executable.
    """

    def __init__(self, graph: Graph, x: Any, y: Any, where: str):
        xs = _pack_inputs(graph, x, where)
        n = int(np.shape(y)[0]) if np.ndim(y) else -1
        if n < 1 or any(np.shape(a)[0] != n for a in xs):
            raise ValueError(
                f"{where}: x and y need the same number (>= 1) of examples, got x {[np.shape(a) for a in xs]} "
                f"and y {np.shape(y)}"
            )
        self.n = n
        self.on_device = jax.default_backend() != "cpu"
        move = _on_device if self.on_device else _on_host
        self.arrays = (tuple(move(a) for a in xs), move(y))
        labels, outs = self.arrays[1], [graph.shape(o) for o in graph.spec.outputs]
        self.classifies = (
            len(outs) == 1
            and len(outs[0]) == 1
            and (
                (labels.ndim == 2 and labels.shape[1] == outs[0][0])
                or (labels.ndim == 1 and jnp.issubdtype(labels.dtype, jnp.integer))
            )
        )

    def batches(self, run: _Run, idx: np.ndarray) -> Any:
        """``(xs, y)`` with a leading ``(nb, batch)`` shape taken at the ``(nb, batch)`` indices ``idx``."""
        if self.on_device:
            return run.lookup("gather", _gather, {}, (self.arrays, idx))(self.arrays, idx)
        return jax.tree_util.tree_map(lambda a: a[idx], self.arrays)


class _Run:
    """The mutable bookkeeping of one call: compile lookups and the per-step outputs."""

    def __init__(self):
        self.compile_seconds = 0.0
        self.compiles = 0
        self.hits = 0
        self.outputs: list[Any] = []  # per step (loop) or per epoch (scan): the loss, then each row's correctness
        self.masks: list[np.ndarray] = []

    def lookup(self, name: str, jitted: Callable, static: dict, args: tuple, tier: Any = "full") -> Any:
        found: Lookup = CACHE.get(name, jitted, static, args, tier)
        self.compile_seconds += found.seconds
        self.hits += found.hit
        self.compiles += not found.hit
        return found.compiled


def _check_positive(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def _batch_indices(rng: np.random.Generator | None, n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(nb, batch_size)`` example indices (a shuffle, or in order) and the mask of real (unpadded) entries."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    nb = -(-n // batch_size)
    idx = np.resize(order, nb * batch_size).astype(np.int32).reshape(nb, batch_size)
    mask = (np.arange(nb * batch_size) < n).astype(np.float32).reshape(nb, batch_size)
    return idx, mask


COMPILE_TIERS = ("auto", *TIERS)


def _tier(compile_tier: str, steps: int, where: str) -> Any:
    """The ``tier`` argument of a cache lookup: a fixed tier, or for ``"auto"`` the cost model's choice for a program
    that runs ``steps`` times."""
    if compile_tier not in COMPILE_TIERS:
        raise ValueError(f"{where}: compile_tier must be one of {COMPILE_TIERS}, got {compile_tier!r}")
    if compile_tier != "auto":
        return compile_tier
    return lambda cost, platform: choose_tier(cost, steps, platform)


def _with_utility(graph: Graph) -> Graph:
    """``ng.init_activation_utility`` on the host (its eager ``jnp.full`` compiles a kernel per new width)."""
    state = dict(graph.state)
    for v in graph.spec.vertices:
        entry = state.get(v.name, {})
        if v.op.trait != IMMUTABLE and UTILITY not in entry:
            state[v.name] = {**entry, UTILITY: np.full((v.nout,), EPS, np.float32)}
    return graph.replace(state=state)


def _initial_carry(graph: Graph, optimiser: Optimiser, layout: _Layout | None = None) -> tuple[Graph, Any, jax.Array]:
    """A fresh copy of the graph (the steps donate it), a fresh optimiser state, and the all-finite flag; with a
    ``layout``, the graph's params are one flat vector and the optimiser state is over that vector.

    Built on the host: eager ``jnp`` ops (optax's ``init``, ``jnp.copy``) compile one kernel per new array shape,
    ~40 ms each on CPU, which every mutated candidate would pay. Every optax state our specs build starts at zero
    except the injected hyperparameters (a test checks this against optax's own ``init`` for every spec).
    """
    skeleton = optimiser.skeleton()
    if layout is not None:
        if layout.params_flat:
            graph = graph.replace(params=layout.ravel_host(graph.params))
        shapes = _state_shapes(skeleton, jax.ShapeDtypeStruct((layout.size,), layout.dtype))
    else:
        shapes = _state_shapes(skeleton, graph.params)
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    state = _with_hyper(skeleton, zeros, _hyper_values(optimiser))
    return jax.device_put((graph, state, np.bool_(True)), may_alias=False)


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


def train_graph(
    key: jax.Array,
    graph: Graph,
    x: Any,
    y: Any,
    *,
    optimiser: Optimiser | None = None,
    loss: Callable = optax.softmax_cross_entropy_with_integer_labels,
    batch_size: int = 32,
    epochs: int = 1,
    shuffle: bool = True,
    driver: str = "auto",
    check_every: int = 32,
    activation_utility: bool = False,
    compile_tier: str = "auto",
) -> TrainResult:
    """Trains ``graph`` on ``(x, y)`` and returns a ``TrainResult`` with the trained graph and measurements.

    Args:
        key: shuffles (one permutation per epoch) and dropout (one key per step, folded from the epoch's key).
        graph: the graph to train (not changed: a new graph is returned).
        x: inputs, ``(n, *feature_shape)``; for several graph inputs a tuple or a dict by input name. Numpy arrays
            are moved to the device once and reused while they live.
        y: targets, ``(n, ...)``, whatever ``loss`` takes.
        optimiser: an optimiser spec (default ``Adam(1e-3)``); its state is created fresh for this call.
        loss: ``loss(outputs, y) -> per-example values``, e.g. ``optax.softmax_cross_entropy_with_integer_labels``.
            It is part of the compile-cache key: pass the same function object, not a new lambda per call.
        batch_size: every step sees this many rows; the last partial batch is padded and masked.
        epochs: passes over the data.
        shuffle: shuffle every epoch (by ``key``) or keep the data order.
        driver: ``"loop"`` (Python loop of a jitted step), ``"scan"`` (an epoch as one compiled ``lax.scan``) or
            ``"auto"`` (``choose_driver``).
        check_every: the loop driver looks at the device's NaN flag every this many steps and stops early.
        activation_utility: first give every mutable vertex a stored activation-contribution utility (as
            ``ng.init_activation_utility``). Whatever this flag, every utility the graph stores is updated at every
            step (``ng.update_activation_utility``, padded rows excluded), so the size solver can use it.
        compile_tier: how a step missing from the compile cache is compiled: ``"full"`` (optimised; on XLA:CPU with
            the older fusion emitters and LLVM level 1, which compile faster), ``"fast"`` (on XLA:CPU backend
            optimisation level 0: ~2.5x less compile time, steps ~3x slower), ``"max"`` (the newer fusion emitters:
            slower to compile, fastest steps)
            or ``"auto"``: the tier that finishes this call's ``epochs x batches`` steps soonest by a cost model of
            the lowered step (``_cache.TIER_MODEL``, measured by benchmarks/bench_tiers.py and bench_compile.py).
            The choice is a pure function of the program and the step count, so equal calls train with equal
            executables and give equal numbers (the tiers' numbers differ by rounding). GPUs have one tier.

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]] * 8); y = jnp.array([0, 1] * 8)
        >>> r = ng.train_graph(jax.random.key(1), g, x, y, optimiser=ng.SGD(0.5), batch_size=4, epochs=5)
        >>> r.steps, bool(r.losses[-1] < r.losses[0]), r.nonfinite
        (20, True, False)
    """
    where = "train_graph"
    check_every = _check_positive(check_every, "check_every", where)
    t_start = time.perf_counter()
    plan = _Plan(graph, x, y, optimiser, loss, batch_size, epochs, driver, activation_utility, compile_tier, where)
    graph, data, layout, static, carry, tier, driver = (
        plan.graph,
        plan.data,
        plan.layout,
        plan.static,
        plan.carry,
        plan.tier,
        plan.driver,
    )
    run = _Run()
    step = None
    steps = epochs_done = 0
    for epoch in range(epochs):
        epoch_key = jax.random.fold_in(key, epoch)
        idx, mask = _batch_indices(host_rng(epoch_key, "shuffle") if shuffle else None, data.n, batch_size)
        xs, ys = data.batches(run, idx)
        run.masks.append(mask)
        batches = (xs, ys, mask, np.arange(idx.shape[0], dtype=np.int32))
        if driver == "scan":
            if step is None:
                step = run.lookup("epoch", _train_epoch, static, (carry, batches, epoch_key), tier)
            carry, outputs = step(carry, batches, epoch_key)
            run.outputs.append(outputs)
            steps += idx.shape[0]
        else:
            carry, step, taken = _loop_epoch(run, step, carry, batches, epoch_key, static, check_every, tier)
            steps += taken
        epochs_done += 1
        if not bool(carry[2]):
            break
    graph_out, opt_state, ok = jax.block_until_ready(carry)
    if not bool(ok):
        graph_out = graph
    elif layout is not None and layout.params_flat:
        graph_out = graph_out.replace(params=jax.device_put(layout.unravel_host(np.asarray(graph_out.params))))
    if layout is not None:
        opt_state = layout.tree_state(opt_state)
    return _finish(run, graph_out, opt_state, bool(ok), steps, epochs_done, driver, t_start, data.classifies)


class _Plan:
    """What a training call needs before its first step: checked arguments, the data, the flat layout, the static
    arguments, the initial carry and the compile tier. ``train_graph`` and ``precompile_training`` share it, so a
    precompiled executable is exactly the one training will look up."""

    def __init__(self, graph, x, y, optimiser, loss, batch_size, epochs, driver, activation_utility, tier, where):
        if not isinstance(graph, Graph):
            raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
        optimiser = Adam() if optimiser is None else optimiser
        if not isinstance(optimiser, Optimiser):
            raise TypeError(f"{where}: optimiser must be an optimiser spec (ng.Adam(1e-3), ...), got {optimiser!r}")
        self.batch_size = _check_positive(batch_size, "batch_size", where)
        epochs = _check_positive(epochs, "epochs", where)
        if driver not in DRIVERS:
            raise ValueError(f"{where}: driver must be one of {DRIVERS}, got {driver!r}")
        self.driver = choose_driver(graph) if driver == "auto" else driver
        _tier(tier, 1, where)
        self.graph = _with_utility(graph) if activation_utility else graph
        self.data = _Data(self.graph, x, y, where)
        self.layout = _layout(self.graph.params)
        self.static = {"skeleton": optimiser.skeleton(), "loss": loss, "layout": self.layout}
        self.carry = _initial_carry(self.graph, optimiser, self.layout)
        self.tier = _tier(tier, epochs * -(-self.data.n // self.batch_size), where)


def precompile_training(
    graph: Graph,
    x: Any,
    y: Any,
    *,
    optimiser: Optimiser | None = None,
    loss: Callable = optax.softmax_cross_entropy_with_integer_labels,
    batch_size: int = 32,
    epochs: int = 1,
    driver: str = "auto",
    activation_utility: bool = False,
    compile_tier: str = "auto",
) -> bool:
    """Compiles now the executable that ``ng.train_graph`` with these arguments will use; True if it compiled,
    False if the engine held it already.

    Meant for a thread that compiles the next candidates while the current one trains (``ng.evaluate(...,
    precompile=True)``, ``ng.autofit.fit``): XLA compiles with the GIL released, and on a CPU a training step
    keeps about one core busy. If ``train_graph`` asks for the executable while it is being compiled here, it waits
    for it instead of compiling it again. The arguments are those of ``train_graph`` (no key: shapes only).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> x, y = np.ones((10, 3), np.float32), np.zeros(10, np.int32)
        >>> ng.precompile_training(g, x, y, batch_size=4), ng.precompile_training(g, x, y, batch_size=4)
        (True, False)
        >>> ng.train_graph(jax.random.key(1), g, x, y, batch_size=4).compiles
        0
    """
    where = "precompile_training"
    plan = _Plan(graph, x, y, optimiser, loss, batch_size, epochs, driver, activation_utility, compile_tier, where)
    run = _Run()
    idx, mask = _batch_indices(None, plan.data.n, plan.batch_size)
    if plan.driver != "scan":
        idx, mask = idx[:1], mask[:1]
    xs, ys = plan.data.batches(run, idx)
    batches = (xs, ys, mask, np.arange(idx.shape[0], dtype=np.int32))
    key = jax.random.key(0)
    if plan.driver == "scan":
        name, jitted, args = "epoch", _train_epoch, (plan.carry, batches, key)
    else:
        name, jitted, args = "step", _train_step, (plan.carry, _row(batches, 0), key)
    return not CACHE.get(name, jitted, plan.static, args, plan.tier, background=True).hit


def _row(batches: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], batches)


def _loop_epoch(run: _Run, step, carry, batches, epoch_key, static, check_every, tier):
    nb = batches[3].shape[0]
    for i in range(nb):
        batch = _row(batches, i)
        if step is None:
            step = run.lookup("step", _train_step, static, (carry, batch, epoch_key), tier)
        carry, outputs = step(carry, batch, epoch_key)
        run.outputs.append(outputs)
        if (i + 1) % check_every == 0 and not bool(carry[2]):
            run.masks[-1] = run.masks[-1][: i + 1]
            return carry, step, i + 1
    return carry, step, nb


def _failure_message(losses: np.ndarray) -> str:
    """Upstream's warning: ``"NaN loss detected when training!"`` (or ``"Inf ..."``, by the first bad loss)."""
    bad = losses[~np.isfinite(losses)]
    return f"{'Inf' if bad.size and np.isinf(bad[0]) else 'NaN'} loss detected when training!"


def _finish(run: _Run, graph, opt_state, ok, steps, epochs, driver, t_start, classifies) -> TrainResult:
    width = run.masks[0].shape[-1] + 1 if run.masks else 1
    # on CPU each buffer converts in ~2 us; jax.device_get's batched copy costs ~15 us a buffer there, but on an
    # accelerator it overlaps the transfers instead of waiting for each in turn
    outputs = run.outputs if jax.default_backend() == "cpu" else jax.device_get(run.outputs)
    rows = [np.reshape(np.asarray(v), (-1, width)) for v in outputs]
    rows = np.concatenate(rows) if rows else np.zeros((0, width), np.float32)
    losses = rows[:, 0]
    correct = None
    if classifies:
        mask = np.concatenate([m.reshape(-1) for m in run.masks])
        correct = (rows[:, 1:].reshape(-1) > 0.5)[: mask.size][mask > 0]
    total = time.perf_counter() - t_start
    return TrainResult(
        graph=graph,
        opt_state=opt_state,
        losses=losses,
        correct=correct,
        steps=steps,
        epochs=epochs,
        nonfinite=not ok,
        failure=None if ok else _failure_message(losses),
        compile_seconds=run.compile_seconds,
        train_seconds=total - run.compile_seconds,
        compiles=run.compiles,
        cache_hits=run.hits,
        driver=driver,
    )


def cached_executable(
    jitted: Any,
    *args: Any,
    compile_tier: str = "full",
    runs: int = 1,
    background: bool = False,
    **static: Any,
) -> Any:
    """The training engine's ahead-of-time executable of ``jitted(*args, **static)`` (``jitted``: a ``jax.jit``
    function; ``static``: its static arguments).

    Looked up in the engine's compile cache by ``(function, static arguments, argument tree and shapes,
    placement, compile tier)``, compiled on a miss with the engine's compile options and the persistent compilation
    cache, and counted in ``ng.engine_stats()``. Unlike ``jax.jit``'s own cache, the engine's executables survive
    the periodic clears of JAX's caches in a long search. Call the result with arguments of the same shapes.
    ``compile_tier`` as in ``ng.train_graph``; for ``"auto"``, ``runs`` is how often the caller will run it.
    ``background=True`` counts a compile made ahead of need as such (``ng.engine_stats``).

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> double = jax.jit(lambda x: 2 * x)
        >>> f = ng.cached_executable(double, jnp.ones(3))
        >>> f(jnp.arange(3.0)).tolist(), ng.cached_executable(double, jnp.zeros(3)) is f
        ([0.0, 2.0, 4.0], True)
    """
    if not hasattr(jitted, "lower"):
        raise TypeError(f"cached_executable: jitted must be a jax.jit function, got {jitted!r}")
    runs = _check_positive(runs, "runs", "cached_executable")
    tier = _tier(compile_tier, runs, "cached_executable")
    name = f"fn:{getattr(jitted, '__module__', '')}.{getattr(jitted, '__qualname__', repr(jitted))}:{id(jitted)}"
    return CACHE.get(name, jitted, static, args, tier, background=background).compiled


def evaluate_accuracy(graph: Graph, x: Any, y: Any, *, batch_size: int = 256, compile_tier: str = "auto") -> float:
    """The fraction of examples whose arg-max output equals the label (``y``: integer labels or one-hot rows).

    Runs in inference mode in batches of ``batch_size`` (the last one padded and masked), so a graph spec compiles
    once per batch size whatever the data size. ``compile_tier`` as for ``ng.train_graph`` (``"auto"``: a
    validation set of a few batches gets the fast-compiling tier on XLA:CPU).

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> g = g.replace(params={"d": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}})
        >>> ng.evaluate_accuracy(g, jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), jnp.array([0, 1, 1]))
        0.6666666666666666
    """
    where = "evaluate_accuracy"
    if not isinstance(graph, Graph):
        raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
    batch_size = _check_positive(batch_size, "batch_size", where)
    _tier(compile_tier, 1, where)
    data = _Data(graph, x, y, where)
    if not data.classifies:
        labels = data.arrays[1]
        raise ValueError(
            f"{where}: needs one (n, classes) output and integer labels (n,) or one-hot y (n, classes); "
            f"got outputs {[graph.shape(o) for o in graph.spec.outputs]} and y {labels.shape} {labels.dtype}"
        )
    run = _Run()
    idx, mask = _batch_indices(None, data.n, batch_size)
    xs, ys = data.batches(run, idx)
    evaluate = None
    counts = []
    for i in range(idx.shape[0]):
        args = (graph, *_row((xs, ys, mask), i))
        if evaluate is None:
            evaluate = run.lookup("eval", _eval_batch, {}, args, _tier(compile_tier, idx.shape[0], where))
        counts.append(evaluate(*args))
    return float(sum(int(c) for c in jax.device_get(counts))) / data.n


def step_memory(
    graph: Graph,
    batch_size: int,
    *,
    optimiser: Optimiser | None = None,
    loss: Callable = optax.softmax_cross_entropy_with_integer_labels,
    y_shape: tuple[int, ...] = (),
    y_dtype: Any = np.int32,
    compile_tier: str = "full",
) -> dict[str, int] | None:
    """XLA's memory estimate of one train step of ``graph`` at ``batch_size`` (``compiled.memory_analysis()``).

    Compiles (or finds in the cache) the loop driver's step at ``compile_tier`` (``"fast"``, ``"full"`` or
    ``"max"``), so that training at this batch size with that tier (``ng.train_graph(..., compile_tier=...)``)
    compiles nothing new.
    Returns bytes: ``argument``, ``output``, ``alias``, ``temp``, ``generated_code`` and ``total`` (argument + output
    + temp - alias), or None where the backend gives no analysis. Labels default to integer class labels; pass
    ``y_shape``/``y_dtype`` for other targets (e.g. ``(classes,)``, float32).

    Example:
        >>> import jax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(4,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(3), inp))
        >>> small, large = ng.step_memory(g, 8), ng.step_memory(g, 512)
        >>> small is None or large["total"] > small["total"]
        True
    """
    where = "step_memory"
    if not isinstance(graph, Graph):
        raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")
    batch_size = _check_positive(batch_size, "batch_size", where)
    if compile_tier not in TIERS:
        raise ValueError(f"{where}: compile_tier must be one of {TIERS}, got {compile_tier!r}")
    optimiser = Adam() if optimiser is None else optimiser
    if not isinstance(optimiser, Optimiser):
        raise TypeError(f"{where}: optimiser must be an optimiser spec (ng.Adam(1e-3), ...), got {optimiser!r}")
    xs = tuple(np.zeros((batch_size, *graph.shape(name)), np.float32) for name in graph.spec.inputs)
    y = np.zeros((batch_size, *tuple(y_shape)), jax.dtypes.canonicalize_dtype(np.dtype(y_dtype)))
    batch = (xs, y, np.ones((batch_size,), np.float32), np.int32(0))
    layout = _layout(graph.params)
    carry = _initial_carry(graph, optimiser, layout)
    static = {"skeleton": optimiser.skeleton(), "loss": loss, "layout": layout}
    compiled = CACHE.get("step", _train_step, static, (carry, batch, jax.random.key(0)), compile_tier).compiled
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, AttributeError):
        return None
    if stats is None:
        return None
    out = {
        "argument": int(stats.argument_size_in_bytes),
        "output": int(stats.output_size_in_bytes),
        "alias": int(stats.alias_size_in_bytes),
        "temp": int(stats.temp_size_in_bytes),
        "generated_code": int(stats.generated_code_size_in_bytes),
    }
    out["total"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out
