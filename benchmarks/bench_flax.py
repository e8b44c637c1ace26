"""The engine vs a hand-written Flax/optax loop on a fixed set of search-like architectures, without running a search.

``bench_search.py`` compares the engine with Flax on the final population of a real search, so any change to the
numerics (compile options, activations, mutation defaults) sends it down another path and compares other
architectures. This builds the architectures from a key instead: AutoFlux's default space for MNIST-1D and the
default evolution (population 16) for ``--generations`` generations with a random fitness (no training: the graphs
grow and change as a search's would, widths and weights aside), then takes up to ``--models`` distinct (spec,
batch size) pairs of the last population, largest first. Each goes through ``bench_search.flax_comparison``: steady
epochs of 3600 MNIST-1D examples with the engine at the full tier (what a search's calls get) and the max tier, and
with the Flax loop (``ng.to_flax`` export, a jitted step compiled with XLA's defaults), interleaved, medians of
``--reps``; each one's first call with its compile; and a search's call (the application's epochs from nothing
cached, compile included: ``search_call_throughput_ratio``). The Flax loop also runs compiled with each tier's
options (``*_same_options``), which separates the compiler's settings from the engine's own step. The architectures
depend only on the key and the mutation code, so two versions of the engine can be compared on the same graphs.

Run: ``.venv/bin/python benchmarks/bench_flax.py [--seed 0] [--generations 6] [--models 6] [--quick] [--out DIR]
[--json FILE]``; writes ``bench_flax.json`` and ``.md`` (``benchmarks/_harness.py``). The numbers it guards: the
engine/Flax throughput ratios (``summary``: median, min and max per tier, and of a search's call).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness
from bench_search import RATIO_FIELDS, flax_comparison
from random_evolution import populations

#: training examples of ``--quick`` (the first of MNIST-1D's training part)
QUICK_EXAMPLES = 600


def architectures(seed: int, generations: int, population_size: int) -> list:
    """The population after ``generations`` evolutions with a random fitness, largest graphs first."""
    import naivega_jax as ng

    population = next(itertools.islice(populations(seed, population_size), generations, None))
    return sorted(population, key=lambda c: -ng.nparams(c.graph))


def main() -> None:
    parser = _harness.parser(
        __doc__,
        quick=f"population 4, 1 generation, its model of fewest vertices, 1 repetition, {QUICK_EXAMPLES} examples",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--xla-cache", default="fresh", help='"fresh" (a new temporary dir), "off", or a directory')
    parser.add_argument("--json", help="write the rows and the summary to this file")
    args = parser.parse_args()
    if args.quick:
        args.population, args.generations = min(args.population, 4), min(args.generations, 1)
        args.models, args.reps = min(args.models, 1), min(args.reps, 1)
    import jax

    import naivega_jax as ng

    env = {"jax": jax.__version__, "backend": jax.default_backend(), "cpus": os.cpu_count(), "args": vars(args)}
    env["xla_cache"] = _harness.configure_xla_cache(args.xla_cache)
    print(json.dumps(env), flush=True)
    x, y, *_ = ng.datasets.load("mnist1d")
    x_tr, y_tr, *_ = ng.autofit.prepare_data(x, y, 0.1)
    if args.quick:
        x_tr, y_tr = x_tr[:QUICK_EXAMPLES], y_tr[:QUICK_EXAMPLES]
    population = architectures(args.seed, args.generations, args.population)
    if args.quick:  # the fewest vertices: the same path at a fraction of the compile and step time
        population = sorted(population, key=lambda c: len(c.graph.vertex_names))
    rows = flax_comparison(population, x_tr, y_tr, args.models, args.reps)
    summary = {}
    for tier, field in RATIO_FIELDS:
        ratios = [r[field] for r in rows]
        summary[f"{tier}_median"] = statistics.median(ratios)
        summary[f"{tier}_min"] = min(ratios)
        summary[f"{tier}_max"] = max(ratios)
    print(json.dumps(summary), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "rows": rows, "summary": summary}, f, indent=1)
    _harness.write_result("bench_flax", args, summary=summary, rows=rows, extra={"xla_cache": env["xla_cache"]})


if __name__ == "__main__":
    main()
