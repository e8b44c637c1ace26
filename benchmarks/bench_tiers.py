"""Fast-compiling vs fully optimised train steps: where a short training call should stop paying for optimisation.

XLA:CPU's backend optimisation level 0 compiles the search's train steps ~3x faster and runs them ~2x slower
(``probe_compile_options.py``). A call that trains for few steps gains from the fast tier; a long one loses. For
graphs sampled from the search's own space (AutoFlux default space, MNIST-1D shapes (40, 1), 10 classes, Adam, the
activation-utility probes the search trains with) and several batch sizes, this measures per tier: the compile wall
and CPU seconds (lowering shared) and the median step time over one epoch of 3600 examples; then the break-even
step count ``(full compile - fast compile) / (fast step - full step)``: below it the fast tier finishes sooner.

Run: ``.venv/bin/python benchmarks/bench_tiers.py [--graphs 6] [--batches 16,32,64,128]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np
import optax

import naivega_jax as ng
from naivega_jax.train import _cache, _engine

LOSS = optax.softmax_cross_entropy_with_integer_labels


def epoch_seconds(compiled, graph, opt, x, y, batch) -> float:
    carry = _engine._initial_carry(graph, opt)
    nb = x.shape[0] // batch
    mask = np.ones((batch,), np.float32)
    t0 = time.perf_counter()
    for i in range(nb):
        b = ((x[i * batch : (i + 1) * batch],), y[i * batch : (i + 1) * batch], mask, np.int32(i))
        carry, _ = compiled(carry, b, jax.random.key(0))
    jax.block_until_ready(carry)
    return (time.perf_counter() - t0) / nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=6)
    parser.add_argument("--batches", default="16,32,64,128")
    parser.add_argument("--seed", type=int, default=300)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    print(json.dumps({"jax": jax.__version__, "cpus": os.cpu_count(), "load": os.getloadavg()}), flush=True)
    space = ng.autofit.default_space((40, 1), 10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3600, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3600).astype(np.int32)
    opt = ng.Adam(1e-3)
    static = {"skeleton": opt.skeleton(), "loss": LOSS, "layout": None}
    rows = []
    for g in range(args.graphs):
        graph = ng.sample_graph(jax.random.key(args.seed + g), space, ng.input_vertex("in", shape=(40, 1)))
        graph = _engine._with_utility(graph)
        for batch in map(int, args.batches.split(",")):
            b0 = ((x[:batch],), y[:batch], np.ones((batch,), np.float32), np.int32(0))
            lowered = _engine._train_step.lower(_engine._initial_carry(graph, opt), b0, jax.random.key(0), **static)
            row = {"graph": g, "vertices": len(graph.vertex_names), "nparams": ng.nparams(graph), "batch": batch}
            for tier in ("fast", "full"):
                w0, c0 = time.perf_counter(), time.process_time()
                compiled = lowered.compile(compiler_options=_cache.tier_options("cpu", tier))
                row[f"{tier}_compile_s"] = round(time.perf_counter() - w0, 3)
                row[f"{tier}_compile_cpu_s"] = round(time.process_time() - c0, 3)
                epoch_seconds(compiled, graph, opt, x[: batch * 4], y[: batch * 4], batch)
                row[f"{tier}_step_ms"] = round(
                    1e3 * statistics.median(epoch_seconds(compiled, graph, opt, x, y, batch) for _ in range(2)), 3
                )
            saved = row["full_compile_s"] - row["fast_compile_s"]
            slower = (row["fast_step_ms"] - row["full_step_ms"]) / 1e3
            row["break_even_steps"] = round(saved / slower) if slower > 0 else None
            rows.append(row)
            print(json.dumps(row), flush=True)
    for batch in map(int, args.batches.split(",")):
        r = [row for row in rows if row["batch"] == batch]
        even = [row["break_even_steps"] for row in r if row["break_even_steps"] is not None]
        print(
            json.dumps(
                {
                    "batch": batch,
                    "fast_compile_s_median": statistics.median(row["fast_compile_s"] for row in r),
                    "full_compile_s_median": statistics.median(row["full_compile_s"] for row in r),
                    "fast_step_ms_median": statistics.median(row["fast_step_ms"] for row in r),
                    "full_step_ms_median": statistics.median(row["full_step_ms"] for row in r),
                    "break_even_steps_median": statistics.median(even) if even else None,
                    "break_even_steps_min": min(even) if even else None,
                }
            ),
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
