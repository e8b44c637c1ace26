"""How much could width buckets save? New (spec, batch size) pairs per generation that differ from one already
trained only in layer widths.

Width buckets (a vertex's capacity rounded up, its active neurons a mask) would let a width change compile nothing.
Their best case is a bucket wide enough for every width: then a new pair compiles nothing iff a pair with the same
structure (ops with widths erased, edges, batch size) was seen before. This runs the default search's evolution
(``ng.autofit.default_evolution``, population 16, MNIST-1D shapes) for 10 generations with a random fitness (no
training: the mutation mix is what matters) and counts, per generation, the new pairs and those that only differ in
widths.

Run: ``.venv/bin/python benchmarks/studies/analyse_width_buckets.py [--seeds 0,1] [--generations 10]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import naivega_jax as ng

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: helpers

from random_evolution import populations


def structure(spec: ng.GraphSpec) -> tuple:
    """The spec with every ``nout`` erased: what stays equal when only widths change."""
    out = []
    for v in spec.vertices:
        op = v.op
        if dataclasses.is_dataclass(op) and hasattr(op, "nout"):
            op = dataclasses.replace(op, nout=1)
        out.append((op, v.inputs))
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=16)
    args = parser.parse_args()
    totals = {"new": 0, "width_only": 0}
    for seed in map(int, args.seeds.split(",")):
        seen, seen_structure = set(), set()
        for gen, population in zip(range(args.generations), populations(seed, args.population)):
            new = width_only = 0
            for c in population:
                pair = (c.graph.spec, c.batch_size)
                if pair in seen:
                    continue
                shape_free = (structure(c.graph.spec), c.batch_size)
                new += 1
                width_only += shape_free in seen_structure
                seen.add(pair)
                seen_structure.add(shape_free)
            totals["new"] += new
            totals["width_only"] += width_only
            print(json.dumps({"seed": seed, "generation": gen + 1, "new_pairs": new, "width_only": width_only}))
    totals["width_only_share"] = round(totals["width_only"] / max(totals["new"], 1), 3)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
