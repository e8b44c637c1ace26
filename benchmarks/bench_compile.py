"""Compile cost vs step speed of the engine's options, on graphs sampled from the search's own space.

For each graph (AutoFlux's default space for MNIST-1D, (40, 1) inputs, 10 classes) and each engine configuration,
``ng.train_graph`` trains one epoch of 3600 random MNIST-1D-shaped examples at the given batch size with a cold
compile cache (compile seconds: the engine's ``compile_seconds``, wall; CPU: process CPU seconds of that first call
minus those of a steady call), then steady epochs of all configurations are interleaved (median wall ms).

Configurations (``naivega_jax.train._step.FLAT`` and ``naivega_jax.train._cache.COMPILER_OPTIONS``):
``tree`` (nothing flat), ``tree+opts`` (the full tier's options: XLA:CPU's older fusion emitters, LLVM level 1),
``flat-optimiser`` (gradients and optimiser moments in one vector, parameters a tree, XLA's default options),
``flat-optimiser+opts`` (the same with the full tier's options: the engine's ``"full"`` tier), ``flat`` (parameters
in one vector too), ``flat+opts``. The three tiers themselves are compared by ``bench_tiers.py``. Every call
compiles at the full tier. The persistent compilation cache is off.

Run: ``.venv/bin/python benchmarks/bench_compile.py [--graphs 6] [--batch 32] [--quick] [--out DIR]``; writes
``bench_compile.json`` and ``.md`` (``benchmarks/_harness.py``; ``--json FILE`` also writes the rows and summary
as before). The numbers it guards: the flat optimiser's compile-time ratio to the tree layout and its epoch ratio
(``summary``, per configuration, relative to the first).

Private names, on purpose: the configurations are the engine's module-level switches (``_step.FLAT``,
``_cache.COMPILER_OPTIONS``) and the tier model's inputs (``_engine._initial_carry``, ``_engine._train_step``,
``_cache._cost``), which have no public form.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import jax
import numpy as np

import naivega_jax as ng
from naivega_jax.train import _cache, _engine, _step

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness

OPTIONS = dict(_cache.COMPILER_OPTIONS)
CONFIGS = {
    "tree": (None, {}),
    "tree+opts": (None, OPTIONS),
    "flat-optimiser": ("optimiser", {}),
    "flat-optimiser+opts": ("optimiser", OPTIONS),
    "flat": ("params", {}),
    "flat+opts": ("params", OPTIONS),
}


def configure(name: str) -> None:
    flat, options = CONFIGS[name]
    _step.FLAT = flat
    _cache.COMPILER_OPTIONS = dict(options)


def program_cost(graph, batch) -> dict[str, float]:
    """Bytes a step accesses (XLA's cost analysis) and lines of the lowered step: what the tier model reads."""
    import optax

    opt = ng.Adam(1e-3)
    carry = _engine._initial_carry(graph, opt)
    b = ((np.zeros((batch, 40, 1), np.float32),), np.zeros((batch,), np.int32), np.ones((batch,), np.float32), 0)
    static = {"skeleton": opt.skeleton(), "loss": optax.softmax_cross_entropy_with_integer_labels, "layout": None}
    cost = _cache._cost(_engine._train_step.lower(carry, (*b[:3], np.int32(0)), jax.random.key(0), **static))
    return {"bytes": cost["bytes"], "lines": cost["lines"]}


def train(graph, x, y, batch, key=0):
    return ng.train_graph(
        jax.random.key(key), graph, x, y, optimiser=ng.Adam(1e-3), batch_size=batch, shuffle=True, compile_tier="full"
    )


def main() -> None:
    parser = _harness.parser(
        __doc__, quick="1 graph, 720 examples, 1 steady repetition, configurations tree+opts and flat-optimiser+opts"
    )
    parser.add_argument("--graphs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated; ratios are to the first")
    parser.add_argument(
        "--no-utility", action="store_true", help="graphs without stored activation utilities (the search has them)"
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    n = 3600
    if args.quick:
        args.graphs, args.reps, n = min(args.graphs, 1), min(args.reps, 1), 720
        if args.configs == ",".join(CONFIGS):
            args.configs = "tree+opts,flat-optimiser+opts"
    names = args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: unknown {unknown}; known: {list(CONFIGS)}")
    ng.train.set_compilation_cache(None)
    print(json.dumps({"jax": jax.__version__, "load": os.getloadavg(), "args": vars(args)}), flush=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    space = ng.autofit.default_space((40, 1), 10)
    rows = []
    for g in range(args.graphs):
        graph = ng.sample_graph(jax.random.key(args.seed + g), space, ng.input_vertex("in", shape=(40, 1)))
        if not args.no_utility:
            graph = ng.graph.init_activation_utility(graph)
        row = {"graph": g, "vertices": len(graph.vertex_names), "nparams": ng.nparams(graph)}
        row.update(program_cost(graph, args.batch))
        epochs = {name: [] for name in names}
        for name in names:
            configure(name)
            jax.clear_caches()  # no traces from the previous configuration; the engine keeps its executables
            c0 = time.process_time()
            first = train(graph, x, y, args.batch)
            first_cpu = time.process_time() - c0
            c0 = time.process_time()
            train(graph, x, y, args.batch)
            steady_cpu = time.process_time() - c0
            row[f"{name}_compile_s"] = round(first.compile_seconds, 2)
            row[f"{name}_compile_cpu_s"] = round(first_cpu - steady_cpu, 2)
            row[f"{name}_loss"] = float(first.losses[-1])
        # steady epochs, configurations interleaved (each keeps its executable: the cache holds all four)
        for rep in range(args.reps):
            for name in names:
                configure(name)
                t0 = time.perf_counter()
                r = train(graph, x, y, args.batch, key=rep + 1)
                epochs[name].append(time.perf_counter() - t0)
                assert r.compiles == 0, (name, r.compiles)
        for name in names:
            row[f"{name}_epoch_ms"] = round(1e3 * statistics.median(epochs[name]), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    base = names[0]
    for name in names:
        summary[name] = {
            "compile_s": statistics.median(r[f"{name}_compile_s"] for r in rows),
            "compile_cpu_s": statistics.median(r[f"{name}_compile_cpu_s"] for r in rows),
            "epoch_ms": statistics.median(r[f"{name}_epoch_ms"] for r in rows),
            "compile_s_ratio": round(
                statistics.median(r[f"{name}_compile_s"] / r[f"{base}_compile_s"] for r in rows), 3
            ),
            "compile_cpu_ratio": round(
                statistics.median(r[f"{name}_compile_cpu_s"] / r[f"{base}_compile_cpu_s"] for r in rows), 3
            ),
            "epoch_ratio": round(statistics.median(r[f"{name}_epoch_ms"] / r[f"{base}_epoch_ms"] for r in rows), 3),
            # per step (an epoch is 3600 / batch steps) and per lowered line, relative to the first configuration
            "step_delta_ns_per_byte": round(
                statistics.median(
                    (r[f"{name}_epoch_ms"] - r[f"{base}_epoch_ms"]) * 1e6 / (n / args.batch) / r["bytes"] for r in rows
                ),
                5,
            ),
            "compile_delta_ms_per_line": round(
                statistics.median((r[f"{name}_compile_s"] - r[f"{base}_compile_s"]) * 1e3 / r["lines"] for r in rows), 4
            ),
        }
    summary["load_after"] = os.getloadavg()
    print(json.dumps(summary), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=1)
    headline = {f"{name}_{k}": v for name in names for k, v in summary[name].items()}
    headline["load_after"] = summary["load_after"]
    _harness.write_result("bench_compile", args, summary=headline, rows=rows, extra={"by_configuration": summary})


if __name__ == "__main__":
    main()
