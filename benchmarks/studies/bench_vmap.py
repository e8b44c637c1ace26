"""Population batching on this backend: k members of one spec trained by one vmapped step vs a loop of k steps.

Graphs are sampled from the search's own space (AutoFlux default space for MNIST-1D (40, 1), 10 classes) plus one
dense-only graph (``ng.autofit.mlp_space``). The step is the engine's (``_step_body`` with the engine's parameter
layout, ``_engine._layout``, and its compile options: ``_cache.tier_options(platform, "full")`` where the engine
has compile tiers, else ``_cache.COMPILER_OPTIONS``). Each member gets its own batch (same data, stacked).

For k copies of a graph with different parameter values: the compile seconds of the single step and of the vmapped
step, and the wall time per population step (``loop_ms``: k members trained one after the other, ``--steps``
chained steps each; ``vmap_ms``: ``--steps`` chained vmapped steps), the median of ``--reps`` interleaved
repetitions, divided by ``--steps``. ``vmap_speedup`` = loop_ms / vmap_ms (> 1: batching the population pays).

Run: ``.venv/bin/python benchmarks/studies/bench_vmap.py [--graphs 3] [--k 2,4]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time

import jax
import numpy as np
import optax

import naivega_jax as ng
from naivega_jax.train import _cache, _engine, _step

LOSS = optax.softmax_cross_entropy_with_integer_labels


def engine_options(platform: str) -> dict:
    """The XLA options the engine compiles its train steps with (the full tier where the engine has tiers)."""
    if hasattr(_cache, "tier_options"):
        return dict(_cache.tier_options(platform, "full"))
    return dict(_cache.COMPILER_OPTIONS.get(platform, {}))


def compile_fn(fn, *args):
    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    options = engine_options(jax.default_backend())
    compiled = lowered.compile(compiler_options=options or None)
    return compiled, time.perf_counter() - t0


def copies(graph, k: int) -> list:
    """k copies of ``graph`` with different parameter values (scaled by 1, 1.01, 1.02, ...)."""
    return [
        graph.replace(
            params=jax.tree_util.tree_map(lambda a, i=i: np.asarray(a) * np.float32(1 + 0.01 * i), graph.params)
        )
        for i in range(k)
    ]


def measure(graph, in_shape, batch, ks, steps, reps):
    opt = ng.Adam(1e-3)
    layout = _engine._layout(graph.params)
    static = dict(skeleton=opt.skeleton(), loss=LOSS, layout=layout)
    body = functools.partial(_step._step_body, **static)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    b = ((x,), y, np.ones(batch, np.float32), np.int32(0))
    key = jax.random.key(0)
    single, single_s = compile_fn(jax.jit(body), _engine._initial_carry(graph, opt, layout), b, key)
    out = {"single_compile_s": round(single_s, 2)}
    for k in ks:
        carries = [_engine._initial_carry(g, opt, layout) for g in copies(graph, k)]
        stacked = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(v) for v in a]), *carries)
        stacked = jax.device_put(stacked)
        stacked_b = jax.tree_util.tree_map(lambda a, k=k: np.stack([a] * k), b)
        vm = jax.jit(jax.vmap(body, in_axes=(0, 0, None)))
        vmapped, vmapped_s = compile_fn(vm, stacked, stacked_b, key)
        loop_t, vmap_t = [], []
        for _ in range(reps):
            # the loop trains member after member, each for ``steps`` chained steps (as the engine does)
            t0 = time.perf_counter()
            for c in carries:
                for _ in range(steps):
                    c = single(c, b, key)[0]
                jax.block_until_ready(c)
            loop_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            c = stacked
            for _ in range(steps):
                c = vmapped(c, stacked_b, key)[0]
            jax.block_until_ready(c)
            vmap_t.append(time.perf_counter() - t0)
        loop_ms, vmap_ms = 1e3 * statistics.median(loop_t) / steps, 1e3 * statistics.median(vmap_t) / steps
        out[f"k{k}"] = {
            "vmap_compile_s": round(vmapped_s, 2),
            "loop_ms": round(loop_ms, 2),
            "vmap_ms": round(vmap_ms, 2),
            "vmap_speedup": round(loop_ms / vmap_ms, 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=3)
    parser.add_argument("--k", default="2,4")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="chained steps per timed repetition")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    ng.train.set_compilation_cache(None)
    print(json.dumps({"backend": jax.default_backend(), "load": os.getloadavg(), "args": vars(args)}), flush=True)
    cases = [("conv", (40, 1), ng.autofit.default_space((40, 1), 10), 600 + g) for g in range(args.graphs)]
    cases.append(("dense", (40,), ng.autofit.mlp_space(10), 700))
    for kind, in_shape, space, seed in cases:
        graph = ng.sample_graph(jax.random.key(seed), space, ng.input_vertex("in", shape=in_shape))
        row = {"kind": kind, "vertices": len(graph.vertex_names), "nparams": ng.nparams(graph)}
        row.update(measure(graph, in_shape, args.batch, ks, args.steps, args.reps))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
