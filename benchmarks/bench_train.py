"""Per-candidate training throughput: the naivega_jax engine vs a hand-written Flax/optax loop.

Same architecture, batch size, optimiser (Adam 1e-3), data and process. One candidate's training call is one epoch
over MNIST-1D-shaped random data (40 features, 10 classes); every epoch shuffles (a host permutation and gather, as
a plain data loader does). Measured per model:

* compile: the engine's measured ``compile_seconds`` on a fresh spec vs ``jax.jit(step).lower(...).compile()``
  (plus the scan epoch for the Flax scan variant);
* steady epoch: the median wall time of a whole training call once compiled (engine: ``train_graph`` including its
  optimiser-state set-up and result collection; Flax: a fresh ``opt.init``, shuffle, the loop or scan, block),
  engine and Flax calls interleaved so that load from other processes hits both alike;
* ratio: engine samples/s divided by Flax samples/s for the same driver (1.0 = parity).

Run: ``.venv/bin/python benchmarks/bench_train.py`` (about a minute on 2 CPU cores); ``--markdown`` prints a table.
Writes ``bench_train.json`` and ``.md`` (``benchmarks/_harness.py``); the number it guards is the engine/Flax
throughput ratio per model and driver (``summary["min_throughput_ratio"]``). The first table of RESULTS.md predates
the engine's compile tiers: now ``compile_tier="auto"`` gives these 32-step calls the fast tier (cheap compiles,
slower steps; the rows say which tier), and ``--compile-tier full`` compares steady steps as that table did.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import naivega_jax as ng

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness

N, FEATURES, CLASSES, BATCH = 4096, 40, 10, 128


class FlaxMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(256)(x))
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(CLASSES)(x)


class FlaxCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (5,), padding="SAME")(x))
        x = nn.max_pool(x, (2,), (2,))
        x = nn.relu(nn.Conv(64, (5,), padding="SAME")(x))
        return nn.Dense(CLASSES)(x.mean(axis=1))


def ng_mlp() -> ng.Graph:
    inp = ng.input_vertex("in", shape=(FEATURES,))
    h1 = ng.vertex("h1", ng.Dense(256, "relu"), inp)
    h2 = ng.vertex("h2", ng.Dense(128, "relu"), h1)
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(CLASSES), h2))


def ng_cnn() -> ng.Graph:
    inp = ng.input_vertex("in", shape=(FEATURES, 1))
    c1 = ng.vertex("c1", ng.Conv(32, 5, activation="relu"), inp)
    p = ng.vertex("p", ng.MaxPool(2), c1)
    c2 = ng.vertex("c2", ng.Conv(64, 5, activation="relu"), p)
    g = ng.vertex("g", ng.GlobalPool("mean"), c2)
    return ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(CLASSES), g))


def flax_runner(model, x, y, params, driver: str):
    """Compiles the hand-written step (or scan epoch); returns (compile seconds, one-epoch callable)."""
    opt = optax.adam(1e-3)

    def step(carry, batch):
        p, s = carry
        xb, yb = batch

        def loss_fn(pp):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(pp, xb), yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), loss

    carry = (params, opt.init(params))
    n = x.shape[0]
    nb = n // BATCH
    t0 = time.perf_counter()
    if driver == "loop":
        run = jax.jit(step).lower(carry, (x[:BATCH], y[:BATCH])).compile()
    else:
        xs = jnp.zeros((nb, BATCH, *x.shape[1:]), x.dtype)
        ys = jnp.zeros((nb, BATCH), y.dtype)
        run = jax.jit(lambda c, b: jax.lax.scan(step, c, b)).lower(carry, (xs, ys)).compile()
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)

    def epoch():
        state = (params, opt.init(params))
        perm = rng.permutation(n)
        xb = x[perm].reshape(nb, BATCH, *x.shape[1:])
        yb = y[perm].reshape(nb, BATCH)
        if driver == "loop":
            for i in range(nb):
                state, _ = run(state, (xb[i], yb[i]))
        else:
            state, _ = run(state, (xb, yb))
        return jax.block_until_ready(state)

    return compile_s, epoch


def compare(graph: ng.Graph, flax_model, x, y, reps: int, driver: str, tier: str = "auto") -> dict:
    """Flax and engine calls interleaved, so that load from other processes hits both alike."""
    params = flax_model.init(jax.random.key(0), x[:1])
    flax_compile, flax_epoch = flax_runner(flax_model, x, y, params, driver)
    ng.train.clear_compile_cache(jax_caches=False)
    kw = dict(optimiser=ng.Adam(1e-3), batch_size=BATCH, driver=driver, compile_tier=tier)
    fast0 = ng.train.engine_stats()["fast_compiles"]
    first = ng.train_graph(jax.random.key(0), graph, x, y, **kw)
    fast = ng.train.engine_stats()["fast_compiles"] > fast0
    flax_epoch()
    flax_times, engine_times, hits = [], [], []
    for i in range(reps):
        t0 = time.perf_counter()
        flax_epoch()
        flax_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = ng.train_graph(jax.random.key(i + 1), graph, x, y, **kw)
        engine_times.append(time.perf_counter() - t0)
        hits.append(r.compiles == 0)
    flax_s, engine_s = statistics.median(flax_times), statistics.median(engine_times)
    n = x.shape[0]
    return {
        "driver": driver,
        "auto_choice": ng.train.choose_driver(graph),
        "flax_compile_s": round(flax_compile, 3),
        "engine_compile_s": round(first.compile_seconds, 3),
        "engine_tier": "fast" if fast else ("full or max" if tier == "auto" else tier),
        "flax_epoch_ms": round(flax_s * 1e3, 2),
        "engine_epoch_ms": round(engine_s * 1e3, 2),
        "flax_samples_per_s": round(n / flax_s),
        "engine_samples_per_s": round(n / engine_s),
        "throughput_ratio": round(flax_s / engine_s, 2),
        "engine_steady_calls_compiled_nothing": all(hits),
    }


def main() -> None:
    parser = _harness.parser(
        __doc__, quick="1024 examples, 2 repetitions, the CNN with the loop driver only (its scan is the slow one)"
    )
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table at the end")
    parser.add_argument(
        "--compile-tier",
        default="auto",
        choices=("auto", "fast", "full", "max"),
        help="the engine's compile_tier (auto: what a caller gets; a one-epoch call of 32 steps gets the fast tier)",
    )
    args = parser.parse_args()
    n = N
    if args.quick:
        n, args.reps = 1024, min(args.reps, 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, n).astype(np.int32)
    env = {"jax": jax.__version__, "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}
    print(json.dumps(env), flush=True)
    rows = []
    models = [
        ("MLP 40-256-128-10", ng_mlp(), FlaxMLP(), x),
        ("CNN 1-D conv32-pool-conv64-gpool-dense", ng_cnn(), FlaxCNN(), x[..., None]),
    ]
    for name, graph, flax_model, data in models:
        for driver in ("loop",) if args.quick and name.startswith("CNN") else ("loop", "scan"):
            row = {"model": name, **compare(graph, flax_model, data, y, args.reps, driver, args.compile_tier)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.markdown:
        print("\n| model | driver (auto) | compile s: Flax / engine | epoch ms: Flax / engine | engine/Flax |")
        print("|---|---|---|---|---|")
        for r in rows:
            auto = " (auto)" if r["driver"] == r["auto_choice"] else ""
            print(
                f"| {r['model']} | {r['driver']}{auto} | {r['flax_compile_s']} / {r['engine_compile_s']} | "
                f"{r['flax_epoch_ms']} / {r['engine_epoch_ms']} | {r['throughput_ratio']} |"
            )
    ratios = [r["throughput_ratio"] for r in rows]
    summary = {
        "min_throughput_ratio": min(ratios),
        "median_throughput_ratio": statistics.median(ratios),
        "steady_calls_compiled_nothing": all(r["engine_steady_calls_compiled_nothing"] for r in rows),
        "examples_per_epoch": n,
    }
    _harness.write_result("bench_train", args, summary=summary, rows=rows)


if __name__ == "__main__":
    main()
