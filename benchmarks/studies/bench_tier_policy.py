"""Compile-tier policies compared on the same work: the default search's generations, trained for real.

``bench_search.py`` runs a real search, whose path (and so the architectures it trains) changes with anything that
changes the numbers, such as which tier compiled a step. This replays one fixed sequence instead: the populations of
``random_evolution.populations`` (AutoFlux's default space and evolution for MNIST-1D, population 16, a random
fitness, so the graphs do not depend on training), and scores each generation with the application's own fitness
(``TrainThenFitness``: ``default_epochs`` epochs of the 3600 training examples, then ``AccuracyVsSize`` on the 400
validation examples) through ``ng.evolution.evaluate(..., precompile=True)``, as ``ng.autofit.fit`` does in one
process. Every
policy trains the same graphs at the same batch sizes for the same number of steps; only the tiers differ.

Policies (``--policy``; each run in its own process with a fresh persistent compilation cache):

- ``auto``: the engine's default (``compile_tier="auto"``, ``_cache.TIER_MODEL``).
- ``full``: every step at the full tier.
- ``max``: every step at the max tier.
- ``no-fast``: ``auto`` choosing only between the full and max tiers.

Prints one JSON line per generation and a summary: wall time, seconds waited for compiles, compiles by tier,
seconds of background compiling, and the training seconds (wall minus waits) per step.

Run: ``.venv/bin/python benchmarks/studies/bench_tier_policy.py --policy auto [--generations 10] [--json FILE]``; or
``--policy all`` (or a comma-separated list) to run each policy in turn in a subprocess (``--rounds`` times,
alternating the order).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

POLICIES = ("auto", "full", "max", "no-fast")
HUGE = 1.0  # seconds per byte or per line: a tier with this cost is never chosen


def _apply(policy: str) -> None:
    from naivega_jax.train import _cache

    model = _cache.TIER_MODEL["cpu"]
    if policy == "full":
        _cache.TIER_MODEL["cpu"] = _cache.TierModel(HUGE, 0.0, 0.0, HUGE)
    elif policy == "max":
        _cache.TIER_MODEL["cpu"] = _cache.TierModel(HUGE, 0.0, HUGE, 0.0)
    elif policy == "no-fast":
        _cache.TIER_MODEL["cpu"] = _cache.TierModel(HUGE, 0.0, model.max_step_per_byte, model.max_compile_per_line)
    elif policy != "auto":
        raise ValueError(f"--policy must be one of {POLICIES} or 'all', got {policy!r}")


def run(policy: str, seed: int, generations: int, population_size: int) -> dict:
    import jax
    from bench_search import _configure_xla_cache
    from random_evolution import populations

    _configure_xla_cache("fresh")
    _apply(policy)
    import naivega_jax as ng
    from naivega_jax.autofit import default_epochs, prepare_data

    x, y, *_ = ng.datasets.load("mnist1d")
    x_tr, y_tr, x_val, y_val, *_ = prepare_data(x, y, 0.1)
    epochs = default_epochs(x_tr.shape[0])
    fitness = ng.TrainThenFitness(
        train_data=(x_tr, y_tr), fitness=ng.evolution.AccuracyVsSize((x_val, y_val)), invalid_fitness=0.0, epochs=epochs
    )
    rows, steps_total = [], 0
    before = ng.train.engine_stats()
    for gen, members in enumerate(itertools.islice(populations(seed, population_size), generations), start=1):
        population = ng.Population(tuple(members), generation=gen)
        steps = sum(epochs * -(-x_tr.shape[0] // c.batch_size) for c in members)
        stats0 = ng.train.engine_stats()
        t0 = time.perf_counter()
        scored = ng.evolution.evaluate(jax.random.key(gen), fitness, population, precompile=True)
        wall = time.perf_counter() - t0
        stats = {k: v - stats0.get(k, 0) for k, v in ng.train.engine_stats().items()}
        steps_total += steps
        rows.append(
            {
                "generation": gen,
                "wall_s": round(wall, 2),
                "waited_compile_s": round(stats["compile_seconds"], 2),
                "compiles": int(stats["compiles"]),
                "fast_compiles": int(stats["fast_compiles"]),
                "background_compile_s": round(stats["background_compile_seconds"], 2),
                "steps": steps,
                "best_fitness": round(max(c.fitness for c in scored), 4),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    total = {k: v - before.get(k, 0) for k, v in ng.train.engine_stats().items()}
    wall = sum(r["wall_s"] for r in rows)
    summary = {
        "policy": policy,
        "wall_s": round(wall, 1),
        "waited_compile_s": round(total["compile_seconds"], 1),
        "waited_share": round(total["compile_seconds"] / wall, 3),
        "compiles": int(total["compiles"]),
        "fast_compiles": int(total["fast_compiles"]),
        "background_compile_s": round(total["background_compile_seconds"], 1),
        "steps": steps_total,
        "ms_per_step_excluding_waits": round((wall - total["compile_seconds"]) / steps_total * 1e3, 3),
    }
    print(json.dumps(summary), flush=True)
    return {"summary": summary, "generations": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="all", help=f"one of {POLICIES}, a comma-separated list, or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="with --policy all: runs of every policy")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    policies = POLICIES if args.policy == "all" else tuple(args.policy.split(","))
    if not policies or any(p not in POLICIES for p in policies):
        parser.error(
            f"--policy: expected one of {POLICIES}, a comma-separated list of them, or 'all'; got {args.policy!r}"
        )
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: helpers
    import jax

    env = {"jax": jax.__version__, "backend": jax.default_backend(), "cpus": os.cpu_count(), "args": vars(args)}
    print(json.dumps(env), flush=True)
    if len(policies) == 1 and args.rounds == 1:
        result = run(policies[0], args.seed, args.generations, args.population)
        results = [result]
    else:
        results = []
        for r in range(args.rounds):
            for policy in policies if r % 2 == 0 else policies[::-1]:
                with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
                    cmd = [sys.executable, os.path.abspath(__file__), "--policy", policy, "--json", out.name]
                    cmd += ["--seed", str(args.seed), "--generations", str(args.generations)]
                    cmd += ["--population", str(args.population)]
                    subprocess.run(cmd, check=True)
                    results.append(json.load(out)["results"][0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
