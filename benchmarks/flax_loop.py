"""The hand-written Flax/optax training loop the GPU check compares a search generation with.

Any ``ng.Graph`` is exported with ``ng.to_flax`` (a ``flax.linen`` module and its variables) and trained the way a
person writes it by hand: one ``jax.jit`` step (forward, cross-entropy, ``value_and_grad``, optax update, batch-norm
statistics as Flax's ``batch_stats``, a dropout key per step), the data put on the default device once, a numpy
permutation per epoch, the batch gathered inside the step, and a Python loop over the batches.

Equal work with the engine: an epoch runs ``ceil(n / batch)`` full-size steps, as the engine does (it pads the last
partial batch with repeats and masks them out of the loss); here the last batch wraps around to the start of the
permutation, unmasked, which costs the same arithmetic. Only what Flax itself trains is kept: parameters and
batch-norm statistics (an activation-contribution utility the graph may store is the engine's own extra work).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import naivega_jax as ng


def _flax_state(graph: ng.Graph) -> dict:
    """The graph's batch-norm statistics (the state entries its ops declare), as Flax's ``batch_stats``."""
    stats = {}
    for v in graph.spec.vertices:
        names = v.op.state_axes()
        if names and v.name in graph.state:
            stats[v.name] = {k: graph.state[v.name][k] for k in names if k in graph.state[v.name]}
    return stats


def flax_epoch_runner(
    graph: ng.Graph,
    optimizer: optax.GradientTransformation,
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    seed: int = 0,
) -> tuple[float, Callable[[], int]]:
    """Compiles the step; returns ``(compile seconds, epoch)``.

    ``epoch()`` trains one epoch from the graph's parameters with a fresh optimiser state, blocks until the device
    is done, and returns the number of examples trained (``ceil(n / batch) * batch``).
    """
    module, variables = ng.to_flax(graph)
    params = variables["params"]
    stats = _flax_state(graph)
    xd, yd = jax.device_put(x), jax.device_put(y)
    base_key = jax.random.key(seed)

    def step(carry, xs, ys, order, i):
        p, bs, s = carry
        idx = jax.lax.dynamic_index_in_dim(order, i, keepdims=False)
        xb, yb = jnp.take(xs, idx, axis=0), jnp.take(ys, idx, axis=0)
        rngs = {"dropout": jax.random.fold_in(base_key, i)}

        def loss_fn(pp):
            out, upd = module.apply(
                {"params": pp, "batch_stats": bs}, xb, train=True, rngs=rngs, mutable=["batch_stats"]
            )
            return optax.softmax_cross_entropy_with_integer_labels(out, yb).mean(), upd.get("batch_stats", {})

        (loss, new_bs), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), new_bs, s), loss

    n = x.shape[0]
    nb = -(-n // batch)
    rng = np.random.default_rng(seed)

    def orders() -> jax.Array:
        return jax.device_put(np.resize(rng.permutation(n), nb * batch).reshape(nb, batch).astype(np.int32))

    carry = jax.device_put((params, stats, optimizer.init(params)))
    t0 = time.perf_counter()
    run = jax.jit(step, donate_argnums=0).lower(carry, xd, yd, orders(), np.int32(0)).compile()
    compile_s = time.perf_counter() - t0

    def epoch() -> int:
        state = jax.device_put((params, stats, optimizer.init(params)), may_alias=False)
        order = orders()
        for i in range(nb):
            state, _ = run(state, xd, yd, order, np.int32(i))
        jax.block_until_ready(state)
        return nb * batch

    return compile_s, epoch
