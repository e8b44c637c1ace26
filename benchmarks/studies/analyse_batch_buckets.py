"""What do batch-size buckets save? New (spec, batch size) pairs, i.e. new train-step compiles, in the default
search's evolution with its batch sizes quantised to powers of two (``BATCH_SIZES``, as AutoFlux does) and without.

The engine compiles one train step per (spec, batch size, optimiser type) it has not seen. The default search's
batch-size mutation (probability 0.1 per mutated member, +-20%) and crossover round to 8, 16, ..., 1024; without
``quantize_to`` the mutation gives ``round(bs * (1 + x))`` (upstream's integer case), and initial sizes stay 32,
64, 128. This runs ``ng.autofit.default_evolution`` (population 16, MNIST-1D shapes) for 10 generations with a
random fitness (no training: the mutation mix is what matters) both ways from the same keys, and counts per
generation the new pairs and, among them, those whose spec was already seen with another batch size (new only
because of the batch size). Without buckets, sizes also drift to values a GPU runs slower (not powers of two).

Run: ``.venv/bin/python benchmarks/studies/analyse_batch_buckets.py [--seeds 0,1,2] [--generations 10]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

import naivega_jax as ng
from naivega_jax.autofit import _strategy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: helpers

from random_evolution import populations


def run(seed: int, generations: int, population_size: int, buckets: bool) -> dict:
    """New (spec, batch) pairs of one evolution, with or without the batch-size buckets."""
    saved = _strategy.BATCH_SIZES
    _strategy.BATCH_SIZES = saved if buckets else None
    try:
        evolution = ng.autofit.default_evolution(population_size, (40, 1))
    finally:
        _strategy.BATCH_SIZES = saved
    seen, seen_specs, batches = set(), set(), set()
    new = batch_only = 0
    for population in itertools.islice(populations(seed, population_size, evolution), generations):
        for c in population:
            batches.add(c.batch_size)
            pair = (c.graph.spec, c.batch_size)
            if pair in seen:
                continue
            new += 1
            batch_only += c.graph.spec in seen_specs
            seen.add(pair)
            seen_specs.add(c.graph.spec)
    return {"new_pairs": new, "batch_only": batch_only, "distinct_batch_sizes": sorted(batches)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=16)
    args = parser.parse_args()
    totals = {True: [0, 0], False: [0, 0]}
    for seed in map(int, args.seeds.split(",")):
        for buckets in (True, False):
            row = run(seed, args.generations, args.population, buckets)
            totals[buckets][0] += row["new_pairs"]
            totals[buckets][1] += row["batch_only"]
            print(json.dumps({"seed": seed, "buckets": buckets, **row}), flush=True)
    for buckets, (new, batch_only) in totals.items():
        print(json.dumps({"buckets": buckets, "new_pairs": new, "batch_only": batch_only}))


if __name__ == "__main__":
    main()
