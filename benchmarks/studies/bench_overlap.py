"""Overlapping compilation with training through a worker process and the persistent compilation cache.

K graphs sampled from the search's space (MNIST-1D shapes) are each compiled and trained for one epoch
(3600 random examples):

* ``sequential``: one process, ``ng.train_graph`` per graph (compile, then train), as the search does now;
* ``overlapped``: a worker process (started and warmed up beforehand; its start-up is reported apart) compiles the
  train steps of all graphs in order with ``ng.train.step_memory`` into a shared persistent cache directory, while this
  process trains graph i as soon as the worker reports it compiled; this process's own compile of graph i is then
  a persistent-cache read (trace, lower and deserialise).

Each mode gets a fresh cache directory. Both processes compile at the engine's full tier (``compile_tier="full"``
where the engine has compile tiers), so that the worker's executables are the ones the trainer looks up.

Measured outcome (2 CPU cores, 6 graphs): 12.65 s sequential vs 12.14 s overlapped, a 4% gain within the noise:
overlapping does not pay here. The worker compiles as slowly as the main process would (both processes share the
two cores, and XLA:CPU already uses both for one compile), so the trainer mostly waits for the worker. Untested on a
GPU machine, where compiles run on host cores that training leaves idle.

Run: ``.venv/bin/python benchmarks/studies/bench_overlap.py [--graphs 6] [--reps 2]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time

import jax
import numpy as np

import naivega_jax as ng

BATCH = 32
WORKER_TIMEOUT_S = 600


def full_tier(fn) -> dict:
    """``{"compile_tier": "full"}`` where ``fn`` takes a compile tier, else nothing (an engine without tiers)."""
    return {"compile_tier": "full"} if "compile_tier" in inspect.signature(fn).parameters else {}


def graphs(k: int, seed: int):
    space = ng.autofit.default_space((40, 1), 10)
    return [ng.sample_graph(jax.random.key(seed + i), space, ng.input_vertex("in", shape=(40, 1))) for i in range(k)]


def worker(cache_dir: str, k: int, seed: int, ready, done) -> None:
    ng.train.set_compilation_cache(cache_dir, min_compile_seconds=0.0)
    gs = graphs(k, seed)
    tier = full_tier(ng.train.step_memory)
    inp = ng.input_vertex("i", shape=(2,))
    tiny = ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("o", ng.Dense(2), inp))
    ng.train.step_memory(tiny, BATCH, **tier)  # warm up JAX
    ready.put(time.perf_counter())
    for i, g in enumerate(gs):
        ng.train.step_memory(g, BATCH, **tier)
        done.put(i)


def run(mode: str, k: int, seed: int, x, y) -> dict:
    cache_dir = tempfile.mkdtemp(prefix=f"ng-overlap-{mode}-")
    ng.train.set_compilation_cache(cache_dir, min_compile_seconds=0.0)
    ng.train.clear_compile_cache()
    gs = graphs(k, seed)
    out = {"mode": mode}
    proc = None
    if mode == "overlapped":
        ctx = mp.get_context("spawn")
        ready, done = ctx.Queue(), ctx.Queue()
        t0 = time.perf_counter()
        proc = ctx.Process(target=worker, args=(cache_dir, k, seed, ready, done))
        proc.start()
        ready.get(timeout=WORKER_TIMEOUT_S)
        out["worker_startup_s"] = round(time.perf_counter() - t0, 2)
    disk_before = ng.train.engine_stats()["disk_hits"]
    t0 = time.perf_counter()
    compile_s, train_s = [], []
    tier = full_tier(ng.train_graph)
    for i, g in enumerate(gs):
        if proc is not None:
            got = done.get(timeout=WORKER_TIMEOUT_S)
            if got != i:
                raise RuntimeError(f"the worker reported graph {got}, expected {i}")
        r = ng.train_graph(jax.random.key(i), g, x, y, optimiser=ng.Adam(1e-3), batch_size=BATCH, **tier)
        compile_s.append(r.compile_seconds)
        train_s.append(r.train_seconds)
    out["total_s"] = round(time.perf_counter() - t0, 2)
    out["main_compile_s"] = round(sum(compile_s), 2)
    out["main_train_s"] = round(sum(train_s), 2)
    out["disk_hits"] = ng.train.engine_stats()["disk_hits"] - disk_before
    if proc is not None:
        proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=800)
    args = parser.parse_args()
    print(json.dumps({"cpus": os.cpu_count(), "load": os.getloadavg(), "args": vars(args)}), flush=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3600, 40, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3600).astype(np.int32)
    totals = {"sequential": [], "overlapped": []}
    for rep in range(args.reps):
        for mode in ("sequential", "overlapped"):
            row = run(mode, args.graphs, args.seed + 100 * rep, x, y)
            totals[mode].append(row["total_s"])
            print(json.dumps(row), flush=True)
    print(json.dumps({m: statistics.median(v) for m, v in totals.items()} | {"load_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
