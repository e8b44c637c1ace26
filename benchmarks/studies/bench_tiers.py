"""The engine's three compile tiers on the search's own graphs: compile seconds vs step time, and the constants of
the cost model behind ``compile_tier="auto"`` (``naivega_jax.train._cache.TIER_MODEL``).

For graphs sampled from the search's space (AutoFlux default space, MNIST-1D shapes (40, 1), 10 classes, Adam,
the activation-utility probes the search trains with, the engine's flat optimiser layout) and several batch sizes,
the loop driver's train step is lowered once and compiled at each tier (``_cache.tier_options``: wall and process
CPU seconds); then epochs of 3600 examples with the three executables are interleaved (median step time). Per row
it derives what the model reads: relative to the full tier, the seconds a step takes longer (fast) or less (max) per
byte the step accesses (XLA's cost analysis of the lowered step), and the compile wall seconds saved (fast) or added
(max) per line of the lowered program. The medians over all rows are the model's constants.

Run: ``.venv/bin/python benchmarks/studies/bench_tiers.py [--graphs 6] [--batches 16,32,64,128] [--json out.json]``.
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
TIERS = ("fast", "full", "max")


def epoch_seconds(compiled, graph, opt, layout, x, y, batch) -> float:
    """Seconds per step of one pass over ``(x, y)`` with the compiled loop-driver step."""
    carry = _engine._initial_carry(graph, opt, layout)
    nb = x.shape[0] // batch
    mask = np.ones((batch,), np.float32)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    for i in range(nb):
        b = ((x[i * batch : (i + 1) * batch],), y[i * batch : (i + 1) * batch], mask, np.int32(i))
        carry, _ = compiled(carry, b, key)
    jax.block_until_ready(carry)
    return (time.perf_counter() - t0) / nb


def measure(graph, batch, x, y, rounds: int) -> dict:
    """One graph at one batch size: the three tiers' compiles and steps, and the per-byte / per-line deltas."""
    opt = ng.Adam(1e-3)
    layout = _engine._layout(graph.params)
    static = {"skeleton": opt.skeleton(), "loss": LOSS, "layout": layout}
    b0 = ((x[:batch],), y[:batch], np.ones((batch,), np.float32), np.int32(0))
    lowered = _engine._train_step.lower(_engine._initial_carry(graph, opt, layout), b0, jax.random.key(0), **static)
    cost = _cache._cost(lowered)
    row = {"vertices": len(graph.vertex_names), "nparams": ng.nparams(graph), "batch": batch}
    row.update(bytes=cost["bytes"], lines=cost["lines"])
    compiled = {}
    for tier in TIERS:
        w0, c0 = time.perf_counter(), time.process_time()
        compiled[tier] = lowered.compile(compiler_options=_cache.tier_options("cpu", tier))
        row[f"{tier}_compile_s"] = round(time.perf_counter() - w0, 3)
        row[f"{tier}_compile_cpu_s"] = round(time.process_time() - c0, 3)
        epoch_seconds(compiled[tier], graph, opt, layout, x[: batch * 4], y[: batch * 4], batch)
    steps = {tier: [] for tier in TIERS}
    for r in range(rounds):
        for tier in TIERS if r % 2 == 0 else TIERS[::-1]:
            steps[tier].append(epoch_seconds(compiled[tier], graph, opt, layout, x, y, batch))
    for tier in TIERS:
        row[f"{tier}_step_ms"] = round(1e3 * statistics.median(steps[tier]), 4)
    full_step, full_compile = row["full_step_ms"] / 1e3, row["full_compile_s"]
    row["fast_step_per_byte"] = (row["fast_step_ms"] / 1e3 - full_step) / cost["bytes"]
    row["fast_compile_per_line"] = (full_compile - row["fast_compile_s"]) / cost["lines"]
    row["max_step_per_byte"] = (full_step - row["max_step_ms"] / 1e3) / cost["bytes"]
    row["max_compile_per_line"] = (row["max_compile_s"] - full_compile) / cost["lines"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=6)
    parser.add_argument("--batches", default="16,32,64,128")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved epochs per tier (median)")
    parser.add_argument("--seed", type=int, default=300)
    parser.add_argument("--json", help="write the rows and the summary to this file")
    args = parser.parse_args()
    env = {"jax": jax.__version__, "cpus": os.cpu_count(), "load": os.getloadavg()}
    env["options"] = {tier: _cache.tier_options("cpu", tier) for tier in TIERS}
    print(json.dumps(env), flush=True)
    space = ng.autofit.default_space((40, 1), 10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3600, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3600).astype(np.int32)
    rows = []
    for g in range(args.graphs):
        graph = ng.sample_graph(jax.random.key(args.seed + g), space, ng.input_vertex("in", shape=(40, 1)))
        graph = _engine._with_utility(graph)
        for batch in map(int, args.batches.split(",")):
            row = {"graph": g, **measure(graph, batch, x, y, args.rounds)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = []
    for batch in map(int, args.batches.split(",")):
        r = [row for row in rows if row["batch"] == batch]
        line = {"batch": batch}
        for tier in TIERS:
            line[f"{tier}_compile_s_median"] = statistics.median(row[f"{tier}_compile_s"] for row in r)
            line[f"{tier}_compile_cpu_s_median"] = statistics.median(row[f"{tier}_compile_cpu_s"] for row in r)
            line[f"{tier}_step_ms_median"] = statistics.median(row[f"{tier}_step_ms"] for row in r)
        summary.append(line)
        print(json.dumps(line), flush=True)
    model = {
        name: statistics.median(row[name] for row in rows)
        for name in ("fast_step_per_byte", "fast_compile_per_line", "max_step_per_byte", "max_compile_per_line")
    }
    print(json.dumps({"tier_model": model, "now": _cache.TIER_MODEL["cpu"].__dict__}), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "rows": rows, "summary": summary, "tier_model": model}, f, indent=1)


if __name__ == "__main__":
    main()
