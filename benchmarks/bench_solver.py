"""Size solver and weight remap timings on residual-fork graphs of about 10, 50 and 200 vertices.

Each block is ``dense -> fork(2 paths) -> concat -> add(dense, concat) -> batch-norm`` (6 vertices, width 64), so
every block's add ties a dense layer to a concatenation: the solver needs its MILP there; plain dense layers before
the head go through the closed form. Solve times include computing the default (weight-magnitude) utility; the
remap applies the selection to every weight array (host numpy, then ``jnp`` arrays).

Run: ``.venv/bin/python benchmarks/bench_solver.py [--repeats 21] [--quick] [--out DIR]``; writes
``bench_solver.json`` and ``.md`` (``benchmarks/_harness.py``). The number it guards: every 50-vertex case solves in
under 100 ms (``summary["max_solve_ms_50"]``).
"""

from __future__ import annotations

import os
import platform
import sys

import jax
import numpy as np
import scipy

import naivega_jax as ng

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness

WIDTH = 64


def build(n_vertices: int, key: jax.Array) -> ng.Graph:
    inp = ng.input_vertex("in", shape=(WIDTH,))
    cur, count, i = inp, 1, 0
    while count + 6 + 3 <= n_vertices or i == 0:
        d = ng.vertex(f"d{i}", ng.Dense(WIDTH, "relu"), cur)
        p1 = ng.vertex(f"p{i}a", ng.Dense(WIDTH // 2, "relu"), d)
        p2 = ng.vertex(f"p{i}b", ng.Dense(WIDTH - WIDTH // 2, "relu"), d)
        res = ng.add(f"res{i}", d, ng.concat(f"cat{i}", p1, p2))
        cur = ng.vertex(f"bn{i}", ng.BatchNorm(), res)
        count, i = count + 6, i + 1
    extra = 0
    while count + 1 < n_vertices or extra == 0:
        cur = ng.vertex(f"extra{extra}", ng.Dense(WIDTH, "relu"), cur)
        count, extra = count + 1, extra + 1
    return ng.build_graph(key, inputs=inp, outputs=ng.vertex("head", ng.Dense(10), cur))


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls, and the last call's result."""
    timing, out = _harness.time_repeats(fn, repeats=repeats)
    return timing.median, out


def cases(graph: ng.Graph):
    rng = np.random.default_rng(0)
    blocks = sum(1 for n in graph.vertex_names if n.startswith("cat"))
    mid = blocks // 2
    movable = [n for n in graph.vertex_names if graph.spec.is_mutable(n) and not ng.graph.is_size_fixed(graph, n)]
    some = list(rng.choice(movable, size=max(1, len(movable) // 5), replace=False))
    deltas = {str(n): int(rng.choice([-3, -2, -1, 1, 2, 3])) for n in some}
    noisy = lambda g, name: np.random.default_rng(len(name)).normal(1.0, 1.0, g.nout(name))
    return [
        ("plain layer, exact -5 (closed form)", lambda: ng.graph.neuron_selection(graph, {"extra0": -5})),
        ("path of a fork, exact +3 (MILP)", lambda: ng.graph.neuron_selection(graph, {f"p{mid}a": 3})),
        ("residual group, relaxed -5 (MILP)", lambda: ng.graph.neuron_selection(graph, {f"d{mid}": -5}, relaxed=True)),
        (f"{len(deltas)} vertices, relaxed, one call", lambda: ng.graph.neuron_selection(graph, deltas, relaxed=True)),
        ("prune everything, noisy utility", lambda: _prune_selection(graph, noisy)),
    ]


def _prune_selection(graph, utility):
    from naivega_jax.graph._sizes import SizeStructure
    from naivega_jax.graph._solver import SizeRequest, solve_selection

    structure = SizeStructure.from_spec(graph.spec)
    return solve_selection(structure, SizeRequest(prune_all=True, no_insert=True), lambda n: utility(graph, n))


def main() -> None:
    parser = _harness.parser(__doc__, quick="3 repeats, the 10- and 50-vertex graphs")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    sizes = (10, 50, 200)
    if args.quick:
        args.repeats, sizes = min(args.repeats, 3), (10, 50)
    rows = []
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, python "
        f"{platform.python_version()}, jax {jax.__version__}, scipy {scipy.__version__}; medians of {args.repeats}"
    )
    print("| vertices | case | MILPs | variables | solve (ms) | remap (ms) |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        graph = build(n, jax.random.key(0))
        for label, fn in cases(graph):
            solve, sel = timed(fn, args.repeats)
            stats = sel.stats
            remap, _ = timed(
                lambda sel=sel, graph=graph: ng.graph.apply_selection(graph, sel, key=jax.random.key(1)), args.repeats
            )
            nv = len(graph.vertex_names)
            print(f"| {nv} | {label} | {stats.milp} | {stats.variables} | {solve * 1e3:.1f} | {remap * 1e3:.1f} |")
            rows.append(
                {
                    "vertices": nv,
                    "case": label,
                    "milps": stats.milp,
                    "variables": stats.variables,
                    "solve_ms": round(solve * 1e3, 2),
                    "remap_ms": round(remap * 1e3, 2),
                }
            )
    summary = {f"max_solve_ms_{n}": max(r["solve_ms"] for r in rows if abs(r["vertices"] - n) <= n // 5) for n in sizes}
    summary["cases"] = len(rows)
    _harness.write_result("bench_solver", args, summary=summary, rows=rows)


if __name__ == "__main__":
    main()
