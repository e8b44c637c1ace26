"""Inference and ahead-of-time executables through the engine's compile cache: ``evaluate_accuracy``,
``evaluate_loss``, ``step_memory``, ``cached_executable``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..graph import Graph
from ..graph.internal import forward
from ._cache import CACHE, TIERS
from ._engine import _batch_indices, _check_graph, _check_positive, _checked_optimiser, _Data, _row, _Run, _tier
from ._optimisers import Optimiser
from ._step import _eval_batch, _initial_carry, _layout, _per_example, _train_step


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
    cache, and counted in ``ng.train.engine_stats()``. Unlike ``jax.jit``'s own cache, the engine's executables survive
    the periodic clears of JAX's caches in a long search. Call the result with arguments of the same shapes.
    ``compile_tier`` as in ``ng.train_graph``; for ``"auto"``, ``runs`` is how often the caller will run it.
    ``background=True`` counts a compile made ahead of need as such (``ng.train.engine_stats``).

    Example:
        >>> import jax, jax.numpy as jnp, naivega_jax as ng
        >>> double = jax.jit(lambda x: 2 * x)
        >>> f = ng.train.cached_executable(double, jnp.ones(3))
        >>> f(jnp.arange(3.0)).tolist(), ng.train.cached_executable(double, jnp.zeros(3)) is f
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
    _check_graph(graph, where)
    batch_size = _check_positive(batch_size, "batch_size", where)
    _tier(compile_tier, 1, where)
    data = _Data(graph, x, y, where)
    if not data.classifies:
        labels = data.arrays[1]
        raise ValueError(
            f"{where}: needs one (n, classes) output and integer labels (n,) or one-hot y (n, classes); "
            f"got outputs {[graph.shape(o) for o in graph.spec.outputs]} and y {labels.shape} {labels.dtype}"
        )
    counts = _per_batch(graph, data, batch_size, compile_tier, where, "eval", _eval_batch, {})
    return float(sum(int(c) for c in counts)) / data.n


def _per_batch(
    graph: Graph, data: _Data, batch_size: int, compile_tier: str, where: str, name: str, jitted: Any, static: dict
) -> list[Any]:
    """``jitted(graph, xs, y, mask, **static)`` on every padded batch of ``data``, through the engine's compile
    cache (one executable per spec, batch size and ``static``); the per-batch results, fetched at once."""
    run = _Run()
    idx, mask = _batch_indices(None, data.n, batch_size)
    xs, ys = data.batches(run, idx)
    evaluate = None
    out = []
    for i in range(idx.shape[0]):
        args = (graph, *_row((xs, ys, mask), i))
        if evaluate is None:
            evaluate = run.lookup(name, jitted, static, args, _tier(compile_tier, idx.shape[0], where))
        out.append(evaluate(*args))
    return jax.device_get(out)


@functools.partial(jax.jit, static_argnames="loss")
def _loss_batch(graph, xs, y, mask, *, loss):
    outs, _ = forward(graph, xs, train=False, key=None)
    per = _per_example(loss, outs[0] if len(outs) == 1 else outs, y)
    # float32 per batch; the batches are summed on the host in float64
    return jnp.sum(jnp.where(mask > 0, per, 0.0))


def evaluate_loss(
    graph: Graph, x: Any, y: Any, loss: Callable, *, batch_size: int = 256, compile_tier: str = "auto"
) -> float:
    """The mean over examples of ``loss(outputs, y)``, in inference mode (batch-norm running statistics, no dropout).

    ``loss`` follows ``ng.train_graph``'s rules: one value per example, shape ``(batch,)`` (e.g.
    ``optax.softmax_cross_entropy_with_integer_labels``), or the outputs' shape (e.g. ``optax.l2_loss`` of outputs
    and targets alike), averaged per example first; any other shape raises ``ng.ShapeError``. Runs in batches of
    ``batch_size``, the last one padded and the padding masked out, so the value does not depend on
    ``batch_size`` (up to float32 rounding) and a graph spec compiles once per batch size and loss, whatever the
    data size. ``compile_tier`` as for ``ng.train_graph``.

    Example:
        >>> import jax, jax.numpy as jnp, optax, naivega_jax as ng
        >>> inp = ng.input_vertex("in", shape=(2,))
        >>> g = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("d", ng.Dense(1), inp))
        >>> g = g.replace(params={"d": {"kernel": jnp.ones((2, 1)), "bias": jnp.zeros(1)}})
        >>> x, y = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), jnp.zeros((3, 1))
        >>> ng.evaluate_loss(g, x, y, optax.l2_loss, batch_size=2)  # (0.5 * 1 + 0.5 * 4 + 0) / 3
        0.8333333333333334
    """
    where = "evaluate_loss"
    _check_graph(graph, where)
    if not callable(loss):
        raise TypeError(f"{where}: loss must be a callable loss(outputs, y), got {loss!r}")
    batch_size = _check_positive(batch_size, "batch_size", where)
    _tier(compile_tier, 1, where)
    data = _Data(graph, x, y, where)
    sums = _per_batch(graph, data, batch_size, compile_tier, where, "eval_loss", _loss_batch, {"loss": loss})
    return float(sum(float(s) for s in sums)) / data.n


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
        >>> small, large = ng.train.step_memory(g, 8), ng.train.step_memory(g, 512)
        >>> small is None or large["total"] > small["total"]
        True
    """
    where = "step_memory"
    _check_graph(graph, where)
    batch_size = _check_positive(batch_size, "batch_size", where)
    if compile_tier not in TIERS:
        raise ValueError(f"{where}: compile_tier must be one of {TIERS}, got {compile_tier!r}")
    optimiser = _checked_optimiser(optimiser, where)
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
