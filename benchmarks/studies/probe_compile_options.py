"""What XLA compile options cost and save for the search's own graphs: compile CPU seconds vs steady step time.

Samples graphs from AutoFlux's default space for MNIST-1D (40, 1), lowers the engine's train step for each (Adam,
the engine's flat optimiser layout) at the given batch size once, compiles it under each setting (process CPU
seconds), then times epochs of 3600 random examples with every executable, interleaved round by round (median).
Per graph it prints each setting's compile CPU and epoch time relative to the first setting; at the end the medians
of those ratios over the graphs.

Run: ``.venv/bin/python benchmarks/studies/probe_compile_options.py [--graphs 6] [--batch 16] [--settings a,b,...]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np

import naivega_jax as ng
from naivega_jax.train import _engine as E

NOFE = {"xla_cpu_use_fusion_emitters": False}
SETTINGS = {
    "default": {},
    "O0": {"xla_backend_optimization_level": 0},
    "O1": {"xla_backend_optimization_level": 1},
    "O2": {"xla_backend_optimization_level": 2},
    "no_fusion_emitters": NOFE,
    "nofe+O0": {**NOFE, "xla_backend_optimization_level": 0},
    "nofe+O1": {**NOFE, "xla_backend_optimization_level": 1},
    "nofe+O2": {**NOFE, "xla_backend_optimization_level": 2},
    "no_expensive_llvm": {"xla_llvm_disable_expensive_passes": True},
    "effort-1": {"exec_time_optimization_effort": -1.0},
    "preset_fast_compile": {"xla_cpu_opt_preset": "CPU_OPT_PRESET_FAST_COMPILE"},
    "preset_fast_runtime": {"xla_cpu_opt_preset": "CPU_OPT_PRESET_FAST_RUNTIME"},
    "vector512": {"xla_cpu_prefer_vector_width": 512},
    "nofe+vector512": {**NOFE, "xla_cpu_prefer_vector_width": 512},
    "nofe+O1+no_concurrency_scheduler": {
        **NOFE,
        "xla_backend_optimization_level": 1,
        "xla_cpu_enable_concurrency_optimized_scheduler": False,
    },
    "nofe+O1+concurrency_scheduler": {
        **NOFE,
        "xla_backend_optimization_level": 1,
        "xla_cpu_enable_concurrency_optimized_scheduler": True,
    },
    "xnnpack": {"xla_cpu_use_xnnpack": True},
    "onednn": {"xla_cpu_use_onednn": True},
    "legacy_runtime": {"xla_cpu_use_thunk_runtime": False},
    "multi_output_fusion": {"xla_cpu_use_multi_output_fusion": True},
    "split1": {"xla_cpu_parallel_codegen_split_count": 1},
    "split4": {"xla_cpu_parallel_codegen_split_count": 4},
}


def args_for(graph, batch):
    opt = ng.Adam(1e-3)
    layout = E._layout(graph.params)
    carry = E._initial_carry(graph, opt, layout)
    xs = (np.zeros((batch, 40, 1), np.float32),)
    b = (xs, np.zeros((batch,), np.int32), np.ones((batch,), np.float32), np.int32(0))
    static = {"skeleton": opt.skeleton(), "loss": E.optax.softmax_cross_entropy_with_integer_labels, "layout": layout}
    return carry, b, static


def epoch(compiled, graph, x, y, batch):
    carry, _, _ = args_for(graph, batch)
    nb = x.shape[0] // batch
    key = jax.random.key(0)
    mask = np.ones((batch,), np.float32)
    t0 = time.perf_counter()
    for i in range(nb):
        b = ((x[i * batch : (i + 1) * batch],), y[i * batch : (i + 1) * batch], mask, np.int32(i))
        carry, _ = compiled(carry, b, key)
    jax.block_until_ready(carry)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved epochs per setting (median)")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--settings", default="no_fusion_emitters,nofe+O1,default,O1")
    args = parser.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {unknown}; known: {list(SETTINGS)}")
    space = ng.autofit.default_space((40, 1), 10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3600, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3600).astype(np.int32)
    ratios = {n: [] for n in names}
    for g in range(args.graphs):
        graph = ng.sample_graph(jax.random.key(args.seed + g), space, ng.input_vertex("in", shape=(40, 1)))
        carry, batch, static = args_for(graph, args.batch)
        lowered = E._train_step.lower(carry, batch, jax.random.key(0), **static)
        compiled, cpu = {}, {}
        for name in names:
            c0 = time.process_time()
            compiled[name] = lowered.compile(compiler_options=SETTINGS[name] or None)
            cpu[name] = time.process_time() - c0
            epoch(compiled[name], graph, x[: args.batch * 4], y[: args.batch * 4], args.batch)
        times = {n: [] for n in names}
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                times[name].append(epoch(compiled[name], graph, x, y, args.batch))
        base = names[0]
        row = {"graph": g, "vertices": len(graph.vertex_names), "nparams": ng.nparams(graph)}
        row["base_compile_cpu_s"] = round(cpu[base], 2)
        row["base_epoch_s"] = round(statistics.median(times[base]), 4)
        for name in names:
            pair = (cpu[name] / cpu[base], statistics.median(times[name]) / statistics.median(times[base]))
            ratios[name].append(pair)
            row[name] = [round(v, 3) for v in pair]
        print(json.dumps(row), flush=True)
    for name in names:
        compile_ratio = statistics.median(r[0] for r in ratios[name])
        epoch_ratio = statistics.median(r[1] for r in ratios[name])
        print(
            json.dumps(
                {"setting": name, "compile_cpu_ratio": round(compile_ratio, 3), "epoch_ratio": round(epoch_ratio, 3)}
            )
        )


if __name__ == "__main__":
    main()
