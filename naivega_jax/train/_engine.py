"""The compile-aware training engine: one jitted train step for every graph, two epoch drivers, evaluation.

Designed around what costs most in an architecture search (XLA compiles, then host work per step):
* one module-level jitted step takes the graph, the optax state and a batch as arguments; executables are compiled
  ahead of time and cached by (spec, batch shapes, optimiser skeleton, loss), so equal specs never recompile and a
  learning-rate change (traced optimiser state) compiles nothing;
* every batch has the same shape: the last partial batch is padded (with repeats of real examples, so batch
  statistics stay sensible) and masked out of the loss and the accuracy;
* a NaN/Inf loss is detected on device (a flag in the carry): the loop driver stops at its next check, the scan
  driver after the epoch, and the result says so and returns the input graph;
* compile seconds and train seconds are measured separately on every call;
* compiles are made cheaper: XLA:CPU compiles with its older fusion emitters and LLVM at level 1
  (``_cache.COMPILER_OPTIONS``: about half the compile time of XLA's defaults, steps 5-20% slower), and
  ``ng.autofit.fit``, the command line and Ray workers switch the persistent compilation cache on (the engine
  alone changes no global setting; ``ng.train.set_compilation_cache`` for your own programs), so a rerun, a resumed run
  or a worker reads executables from disk instead of compiling them; the traced step keeps gradients and optimiser
  moments in one flat vector (``FLAT``, ``_Layout``) and updates all activation utilities at once, ~20% fewer
  compiled loops; a call too short to earn back an
  optimised compile gets a fast-compiling one, a long one XLA's slowest-compiling, fastest code (``compile_tier``);
* two epoch drivers: a Python loop over the jitted step, and a whole epoch as one compiled ``lax.scan``. XLA:CPU runs
  convolutions inside a scan 5-34x slower than the loop, so ``choose_driver`` picks the loop on CPU for graphs with
  spatial ops and the scan everywhere else (28x faster than the loop for an MLP on an H200).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._random import host_rng
from ..graph import AvgPool, Conv, Graph, MaxPool
from ._cache import CACHE, TIERS, Lookup, choose_tier
from ._optimisers import Adam, Optimiser, as_optimiser
from ._step import _gather, _initial_carry, _layout, _train_epoch, _train_step, _with_utility

DRIVERS = ("auto", "loop", "scan")
_SPATIAL_OPS = (Conv, MaxPool, AvgPool)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainResult:
    """What ``train_graph`` returns.

    Attributes:
        graph: the trained graph (parameters and batch-norm state); after a NaN/Inf loss, the input graph
            unchanged (upstream keeps the weights of the step that produced the NaN, which are usually not finite).
        opt_state: the final optax state, in tree form (shaped like ``graph.params`` where optax makes it so, as
            ``optimiser.to_optax().init(graph.params)``): ``train_graph(..., opt_state=result.opt_state)`` continues
            training with it.
        losses: the mean loss of every step taken, in order (numpy).
        correct: per trained example, in training order, whether the graph's prediction *during training* was
            right (padding excluded); None when the output is not a (batch, classes) array.
        steps: number of steps taken.
        epochs: number of epochs completed.
        nonfinite: True if a loss was NaN or Inf.
        failure: then the reason, as upstream words it: ``"NaN loss detected when training!"`` (or
            ``"Inf loss ..."`` when the first bad loss was infinite); None otherwise.
        compile_seconds: seconds spent compiling in this call (0 when every executable came from the cache).
        train_seconds: the rest of the call's wall time (data preparation, steps, waiting for the device).
        compiles: compile-cache misses in this call.
        cache_hits: compile-cache hits in this call.
        driver: ``"loop"`` or ``"scan"``.
        fast_compiles: of the compiles this call made or used first (below), those at the fast tier.
        disk_hits: of those, the ones XLA read from the persistent compilation cache.
        background_compiles: executables this call used that were compiled ahead of need
            (``ng.train.precompile_training``; counted here, once, for the first call that uses each), and
        background_compile_seconds: the seconds those compiles took (in another thread: not in this call's time).

    Every number is this call's own, whatever runs beside it; ``ng.train.sum_call_stats`` adds up several calls'
    (``ng.train.engine_stats`` is the process-wide view).
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
    fast_compiles: int = 0
    disk_hits: int = 0
    background_compiles: int = 0
    background_compile_seconds: float = 0.0

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
        >>> ng.train.choose_driver(g, "cpu"), ng.train.choose_driver(g, "gpu")
        ('loop', 'scan')
    """
    backend = backend or jax.default_backend()
    if backend == "cpu" and any(isinstance(v.op, _SPATIAL_OPS) for v in graph.spec.vertices):
        return "loop"
    return "scan"


# ---- host side ----------------------------------------------------------------------------------------------------


def _batches_on_device() -> bool:
    """Whether ``_Data`` moves the examples to the device and gathers batches there (every backend but CPU)."""
    return jax.default_backend() != "cpu"


def _on_device(a: Any) -> jax.Array:
    """``a`` as a device array on the thread's default device (as ``ng.distributed.DeviceExecutor`` sets it): a
    ``jax.Array``
    as it is, anything else copied now. Never a copy remembered from an earlier call: numpy arrays can change in
    place between calls (a refilled buffer, relabelled targets), and a cache by ``id`` would serve the old values.
    Callers that reuse data across calls own a device copy (``ng.TrainThenFitness`` does)."""
    return a if isinstance(a, jax.Array) else jnp.asarray(a)


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
    0.1-0.8 s each, and the host *is* the device); elsewhere the data moves to the device once per call (nothing
    to do for ``jax.Array`` inputs) and batches are gathered there by one cached executable.
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
        self.on_device = _batches_on_device()
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
        self.fast_compiles = 0
        self.disk_hits = 0
        self.background_compiles = 0
        self.background_compile_seconds = 0.0
        self.outputs: list[Any] = []  # per step (loop) or per epoch (scan): the loss, then each row's correctness
        self.masks: list[np.ndarray] = []

    def lookup(self, name: str, jitted: jax.stages.Wrapped, static: dict, args: tuple, tier: Any = "full") -> Any:
        found: Lookup = CACHE.get(name, jitted, static, args, tier)
        self.compile_seconds += found.seconds
        self.hits += found.hit
        self.compiles += not found.hit
        record = found.compile
        if record is not None:
            self.fast_compiles += record.fast
            self.disk_hits += record.disk_hit
            if record.background:
                self.background_compiles += 1
                self.background_compile_seconds += record.seconds
        return found.compiled


def _check_graph(graph: Any, where: str) -> None:
    if not isinstance(graph, Graph):
        raise TypeError(f"{where}: graph must be an ng.Graph, got {type(graph).__name__}")


def _checked_optimiser(optimiser: Any, where: str) -> Optimiser:
    """``optimiser``, ``Adam()`` for None, an ``Optax`` for a bare optax transformation; anything else than an
    optimiser spec is refused."""
    optimiser = Adam() if optimiser is None else as_optimiser(optimiser)
    if not isinstance(optimiser, Optimiser):
        raise TypeError(
            f"{where}: optimiser must be an optimiser spec (ng.Adam(1e-3), ...) or an optax GradientTransformation, "
            f"got {optimiser!r}"
        )
    return optimiser


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


def train_graph(
    key: jax.Array,
    graph: Graph,
    x: Any,
    y: Any,
    *,
    optimiser: Optimiser | optax.GradientTransformation | None = None,
    loss: Callable = optax.softmax_cross_entropy_with_integer_labels,
    batch_size: int = 32,
    epochs: int = 1,
    shuffle: bool = True,
    driver: str = "auto",
    check_every: int = 32,
    activation_utility: bool = False,
    compile_tier: str = "auto",
    opt_state: Any = None,
) -> TrainResult:
    """Trains ``graph`` on ``(x, y)`` and returns a ``TrainResult`` with the trained graph and measurements.

    Args:
        key: shuffles (one permutation per epoch) and dropout (one key per step, folded from the epoch's key).
        graph: the graph to train (not changed: a new graph is returned).
        x: inputs, ``(n, *feature_shape)``; for several graph inputs a tuple or a dict by input name. Off CPU,
            numpy arrays are copied to the device on every call, as they are at the call; to train many times on
            the same data there, pass ``jax.Array``s (``jax.device_put(x)``), which are used as they are.
        y: targets, ``(n, ...)``, whatever ``loss`` takes.
        optimiser: an optimiser spec (default ``Adam(1e-3)``), or an optax ``GradientTransformation`` as it is
            (``optax.adamw(1e-3)``; see ``ng.Optax``: its hyperparameters are constants of the compiled step, and
            the transformation object is the compile-cache key, so reuse one object or give ``ng.Optax(t, key=...)``).
            A spec's learning rate may be an optax schedule (``ng.Adam(optax.cosine_decay_schedule(1e-2, 1000))``),
            evaluated at the optimiser's own step count.
        loss: ``loss(outputs, y)`` -> one value per example, shape ``(batch,)`` (e.g.
            ``optax.softmax_cross_entropy_with_integer_labels``), or values of the output's shape (e.g.
            ``optax.l2_loss`` of outputs and targets alike), averaged per example; padded rows are masked out either
            way. Any other shape raises ``ng.ShapeError`` naming it when the step is traced, before training: a loss
            that broadcasts (``(o - y) ** 2`` with outputs ``(B, 1)`` and targets ``(B,)``: ``(B, B)``) would
            otherwise learn the mean. The loss is part of the compile-cache key: pass the same function object, not
            a new lambda per call.
        batch_size: every step sees this many rows; the last partial batch is padded and masked.
        epochs: passes over the data.
        shuffle: shuffle every epoch (by ``key``) or keep the data order.
        driver: ``"loop"`` (Python loop of a jitted step), ``"scan"`` (an epoch as one compiled ``lax.scan``) or
            ``"auto"`` (``choose_driver``).
        check_every: the loop driver looks at the device's NaN flag every this many steps and stops early.
        activation_utility: first give every mutable vertex a stored activation-contribution utility (as
            ``ng.graph.init_activation_utility``). Whatever this flag, every utility the graph stores is updated at
            every
            step (``ng.graph.update_activation_utility``, padded rows excluded), so the size solver can use it.
        compile_tier: how a step missing from the compile cache is compiled: ``"full"`` (optimised; on XLA:CPU with
            the older fusion emitters and LLVM level 1, which compile faster), ``"fast"`` (on XLA:CPU backend
            optimisation level 0: ~2.5x less compile time, steps ~3x slower), ``"max"`` (the newer fusion emitters:
            slower to compile, fastest steps)
            or ``"auto"``: the tier that finishes this call's ``epochs x batches`` steps soonest by a cost model of
            the lowered step (``_cache.TIER_MODEL``, measured by benchmarks/studies/bench_tiers.py and
            benchmarks/bench_compile.py).
            The choice is a pure function of the program and the step count, so equal calls train with equal
            executables and give equal numbers (the tiers' numbers differ by rounding). GPUs have one tier.
        opt_state: None for a fresh optimiser state, or one to continue from, in tree form: the ``opt_state`` of an
            earlier ``TrainResult`` for the same graph spec and optimiser type. Adam's moments and the step count
            (which schedules read) go on from it; the spec's current hyperparameters (its learning rate, after a
            mutation say) replace those stored in it. A state whose structure or shapes differ from the optimiser's
            init for this graph raises ``ValueError`` naming the first difference. The caller's arrays are copied,
            never changed. Two calls of one epoch continuing the state give the parameters of one two-epoch call
            (``shuffle=False``, one fixed ``compile_tier``, no dropout: those make the two differ).

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
    plan = _Plan(
        graph, x, y, optimiser, loss, batch_size, epochs, driver, activation_utility, compile_tier, where, opt_state
    )
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

    def __init__(
        self, graph, x, y, optimiser, loss, batch_size, epochs, driver, activation_utility, tier, where, opt_state=None
    ):
        _check_graph(graph, where)
        optimiser = _checked_optimiser(optimiser, where)
        self.batch_size = _check_positive(batch_size, "batch_size", where)
        epochs = _check_positive(epochs, "epochs", where)
        if driver not in DRIVERS:
            raise ValueError(f"{where}: driver must be one of {DRIVERS}, got {driver!r}")
        self.driver = choose_driver(graph) if driver == "auto" else driver
        _tier(tier, 1, where)
        self.graph = _with_utility(graph) if activation_utility else graph
        self.data = _Data(self.graph, x, y, where)
        self.layout = _layout(self.graph.params, optimiser)
        self.static = {"skeleton": optimiser.skeleton(), "loss": loss, "layout": self.layout}
        self.carry = _initial_carry(self.graph, optimiser, self.layout, opt_state, where)
        self.tier = _tier(tier, epochs * -(-self.data.n // self.batch_size), where)


def precompile_training(
    graph: Graph,
    x: Any,
    y: Any,
    *,
    optimiser: Optimiser | optax.GradientTransformation | None = None,
    loss: Callable = optax.softmax_cross_entropy_with_integer_labels,
    batch_size: int = 32,
    epochs: int = 1,
    driver: str = "auto",
    activation_utility: bool = False,
    compile_tier: str = "auto",
) -> bool:
    """Compiles now the executable that ``ng.train_graph`` with these arguments will use; True if it compiled,
    False if the engine held it already.

    Meant for a thread that compiles the next candidates while the current one trains (``ng.evolution.evaluate(...,
    precompile=True)``, ``ng.autofit.fit``): XLA compiles with the GIL released, and on a CPU a training step
    keeps about one core busy. If ``train_graph`` asks for the executable while it is being compiled here, it waits
    for it instead of compiling it again. The arguments are those of ``train_graph`` (no key: shapes only).

    Example:
        >>> import jax, numpy as np, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(3,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(2), inp))
        >>> x, y = np.ones((10, 3), np.float32), np.zeros(10, np.int32)
        >>> ng.train.precompile_training(g, x, y, batch_size=4), ng.train.precompile_training(g, x, y, batch_size=4)
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
    parts = [np.reshape(np.asarray(v), (-1, width)) for v in outputs]
    rows = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
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
        fast_compiles=run.fast_compiles,
        disk_hits=run.disk_hits,
        background_compiles=run.background_compiles,
        background_compile_seconds=run.background_compile_seconds,
    )
