"""What XLA compile options cost and save for the search's own graphs: compile seconds vs steady epoch time.

Samples graphs from AutoFlux's default space for MNIST-1D (40, 1), lowers the engine's train step for each at
batch 64, compiles it under several ``compiler_options`` and measures compile wall/CPU seconds and the wall time of
one epoch (3600 examples) with the resulting executable. Settings are interleaved per graph.

Run: ``.venv/bin/python benchmarks/probe_compile_options.py [--graphs 4]``.
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

SETTINGS = {
    "default": {},
    "backend_O0": {"xla_backend_optimization_level": 0},
    "no_expensive_llvm": {"xla_llvm_disable_expensive_passes": True},
    "O0+no_expensive": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True},
    "effort-1": {"exec_time_optimization_effort": -1.0},
    "no_fusion_emitters": {"xla_cpu_use_fusion_emitters": False},
    "xnnpack": {"xla_cpu_use_xnnpack": True},
    "legacy_runtime": {"xla_cpu_use_thunk_runtime": False},
    "nofe+O0": {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0},
    "nofe+split1": {"xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1},
    "onednn": {"xla_cpu_use_onednn": True},
    "multi_output_fusion": {"xla_cpu_use_multi_output_fusion": True},
    "mof+no_fusion_emitters": {"xla_cpu_use_multi_output_fusion": True, "xla_cpu_use_fusion_emitters": False},
    "split1": {"xla_cpu_parallel_codegen_split_count": 1},
    "split4": {"xla_cpu_parallel_codegen_split_count": 4},
    "xnn_greedy": {
        "xla_cpu_use_xnnpack": True,
        "xla_cpu_experimental_xnn_graph_fusion_mode": "XNN_GRAPH_FUSION_MODE_GREEDY",
    },
}


def args_for(graph, batch):
    opt = ng.Adam(1e-3)
    carry = E._initial_carry(graph, opt)
    xs = (np.zeros((batch, 40, 1), np.float32),)
    b = (xs, np.zeros((batch,), np.int32), np.ones((batch,), np.float32), np.int32(0))
    return carry, b, {"skeleton": opt.skeleton(), "loss": E.optax.softmax_cross_entropy_with_integer_labels}


def epoch(compiled, graph, x, y, batch):
    carry, _, _ = args_for(graph, batch)
    nb = x.shape[0] // batch
    t0 = time.perf_counter()
    for i in range(nb):
        b = (
            (x[i * batch : (i + 1) * batch],),
            y[i * batch : (i + 1) * batch],
            np.ones((batch,), np.float32),
            np.int32(i),
        )
        carry, _ = compiled(carry, b, jax.random.key(0))
    jax.block_until_ready(carry)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    space = ng.autofit.default_space((40, 1), 10)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3600, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3600).astype(np.int32)
    names = args.settings.split(",")
    rows = {n: [] for n in names}
    for g in range(args.graphs):
        graph = ng.sample_graph(jax.random.key(100 + g), space, ng.input_vertex("in", shape=(40, 1)))
        carry, batch, static = args_for(graph, args.batch)
        t0 = time.perf_counter()
        lowered = E._train_step.lower(carry, batch, jax.random.key(0), **static)
        lower_s = time.perf_counter() - t0
        for name in names:
            w0, c0 = time.perf_counter(), time.process_time()
            compiled = lowered.compile(compiler_options=SETTINGS[name] or None)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            epoch(compiled, graph, x, y, args.batch)
            ep = statistics.median(epoch(compiled, graph, x, y, args.batch) for _ in range(3))
            row = {
                "graph": g,
                "setting": name,
                "vertices": len(graph.vertex_names),
                "nparams": ng.nparams(graph),
                "lower_s": round(lower_s, 2),
                "compile_wall_s": round(wall, 2),
                "compile_cpu_s": round(cpu, 2),
                "epoch_s": round(ep, 3),
            }
            rows[name].append(row)
            print(json.dumps(row), flush=True)
    for name in names:
        r = rows[name]
        print(
            json.dumps(
                {
                    "setting": name,
                    "compile_wall_s_median": statistics.median(x["compile_wall_s"] for x in r),
                    "compile_cpu_s_median": statistics.median(x["compile_cpu_s"] for x in r),
                    "epoch_s_median": statistics.median(x["epoch_s"] for x in r),
                }
            )
        )


if __name__ == "__main__":
    main()
