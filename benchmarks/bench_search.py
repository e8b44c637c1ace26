"""Where the time of a real search goes: compilation, training, evaluation, evolution; and the engine vs Flax.

Runs ``ng.autofit.fit`` on MNIST-1D (``ng.datasets.load("mnist1d")``) with its default space, evolution and epochs
per generation (``default_epochs``: 5 for MNIST-1D's 3600 training examples; ``--epochs`` to change it), population
16 and 10 generations by default (``--quick`` for a short smoke run), and reports:

* total wall time of the search, and per generation;
* compile time: the seconds the search waited for compilers (the training engine's ``compile_seconds``: compiles
  in the training and scoring calls, and waits for a compile the background thread had in flight), as a share of
  the wall time (the figure to keep under 25%); the seconds the background thread compiled while members trained
  (``background_compile_seconds``); and every second JAX spent tracing, lowering and compiling in any thread (its
  monitoring events ``jaxpr_trace``, ``jaxpr_to_mlir_module``, ``backend_compile``; with the background thread
  these overlap training);
* training time (the engine's ``train_seconds``), validation time, and the evolution step's time (selection,
  crossover, mutation and weight remapping) as a share of each generation's wall time;
* compiles and cache hits of the engine; the number of distinct (spec, batch size) pairs trained;
* the best validation accuracy of each generation and the best final candidate's test accuracy;
* then, for up to ``--flax-models`` distinct architectures of the final population at their batch sizes, the same
  architecture exported with ``ng.to_flax`` and trained by a hand-written Flax/optax loop (as in
  ``bench_train.py``), engine and Flax epochs interleaved: compile seconds and steady samples/s of both.

The persistent XLA compilation cache is pointed at a fresh temporary directory unless ``--xla-cache DIR`` (reuse,
e.g. to measure a second process) or ``--xla-cache off`` is given, so a run never profits from earlier runs unless
asked to.

Run: ``.venv/bin/python benchmarks/bench_search.py [--quick] [--out DIR] [--json FILE]``; writes
``bench_search.json`` and ``.md`` (``benchmarks/_harness.py``: the summary, one row per generation, the Flax rows in
``extra``). The numbers it guards: the share of the wall time spent waiting for compiles (``engine_compile_share``,
under 0.25) and the evolution's share per generation. ``--quick`` leaves out the Flax comparison, which
``bench_flax.py --quick`` runs.

Not public API, on purpose: ``flax_comparison`` compiles the Flax loop with each tier's options (the private
``naivega_jax.train._cache.tier_options``) and removes the stored utilities by their state key
(``naivega_jax.graph.internal.UTILITY``); neither has a public form.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness

EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "backend_compile",
    "/jax/compilation_cache/cache_retrieval_time_sec": "persistent_cache_retrieval",
}
JAX_TIME: collections.Counter = collections.Counter()
JAX_COUNT: collections.Counter = collections.Counter()


def _listen(event: str, duration: float, **_: object) -> None:
    name = EVENTS.get(event)
    if name is not None:
        JAX_TIME[name] += duration
        JAX_COUNT[name] += 1


jax.monitoring.register_event_duration_secs_listener(_listen)


#: kept under this name for the scripts that import it from here
_configure_xla_cache = _harness.configure_xla_cache


class TimedEvolution:
    """Wraps the evolution step and records its seconds per call."""

    def __init__(self, evolution):
        self.evolution = evolution
        self.seconds: list[float] = []

    def __call__(self, key, members):
        t0 = time.perf_counter()
        out = self.evolution(key, members)
        self.seconds.append(time.perf_counter() - t0)
        return out


class TimedFitness:
    """Wraps the validation fitness (scoring a trained candidate) and records its seconds."""

    def __init__(self, fitness):
        self.fitness = fitness
        self.seconds = 0.0

    def __call__(self, key, candidate):
        t0 = time.perf_counter()
        out = self.fitness(key, candidate)
        self.seconds += time.perf_counter() - t0
        return out

    def precompile(self, candidate):
        """Forwarded, as fit's own fitness has it: the background thread compiles the validation executable too."""
        ahead = getattr(self.fitness, "precompile", None)
        if callable(ahead):
            ahead(candidate)


#: training examples of ``--quick`` (the first of MNIST-1D's)
QUICK_EXAMPLES = 600


def load_data(quick: bool):
    import naivega_jax as ng

    x_tr, y_tr, x_te, y_te = ng.datasets.load("mnist1d")
    if quick:
        x_tr, y_tr, x_te, y_te = x_tr[:QUICK_EXAMPLES], y_tr[:QUICK_EXAMPLES], x_te[:300], y_te[:300]
    return x_tr, y_tr, x_te, y_te


def run_search(args, x, y, x_test, y_test) -> dict:
    import naivega_jax as ng
    from naivega_jax.autofit import prepare_data

    x_tr, y_tr, x_val, y_val, in_shape, _ = prepare_data(x, y, 0.1)
    validation = TimedFitness(ng.evolution.AccuracyVsSize((x_val, y_val)))
    epochs = args.epochs or ng.autofit.default_epochs(x_tr.shape[0])
    fitness = ng.TrainThenFitness(train_data=(x_tr, y_tr), fitness=validation, invalid_fitness=0.0, epochs=epochs)
    evolution = TimedEvolution(ng.autofit.default_evolution(args.population, in_shape))

    generations: list[dict] = []
    clock = {"last": None, "val": 0.0, "engine": ng.train.engine_stats(), "jax": 0.0}

    def record(pop) -> None:
        now = time.perf_counter()
        engine = ng.train.engine_stats()
        jax_compile = sum(JAX_TIME.values())
        infos = [c.info for c in pop]
        scored = [c for c in pop if "failure" not in c.info and c.fitness is not None]
        best = max(scored, key=lambda c: c.fitness) if scored else None
        generations.append(
            {
                "generation": pop.generation,
                "wall_s": now - clock["last"],
                "evolution_s": 0.0,  # filled in after the run (the step that made this generation)
                "validation_s": validation.seconds - clock["val"],
                "jax_compile_s": jax_compile - clock["jax"],
                "engine_compile_s": engine["compile_seconds"] - clock["engine"]["compile_seconds"],
                "engine_compiles": engine["compiles"] - clock["engine"]["compiles"],
                "engine_fast_compiles": engine.get("fast_compiles", 0) - clock["engine"].get("fast_compiles", 0),
                "engine_background_compiles": engine.get("background_compiles", 0)
                - clock["engine"].get("background_compiles", 0),
                "engine_background_compile_s": engine.get("background_compile_seconds", 0)
                - clock["engine"].get("background_compile_seconds", 0),
                "engine_hits": engine["cache_hits"] - clock["engine"]["cache_hits"],
                "train_compile_s": sum(i.get("compile_seconds", 0.0) for i in infos),
                "train_s": sum(i.get("train_seconds", 0.0) for i in infos),
                "train_compiles": sum(i.get("compiles", 0) for i in infos),
                "train_hits": sum(i.get("cache_hits", 0) for i in infos),
                "failures": sum("failure" in i for i in infos),
                "best_fitness": best.fitness if best else None,
                "best_val_accuracy": ng.evaluate_accuracy(best.graph, x_val, y_val) if best else None,
                "distinct_specs": len({(c.graph.spec, c.batch_size) for c in pop}),
                "batch_sizes": sorted(collections.Counter(c.batch_size for c in pop).items()),
                "nparams": sorted(ng.nparams(c.graph) for c in pop),
            }
        )
        # the best-accuracy evaluation above is the benchmark's, not the search's: keep it out of the next interval
        clock.update(
            last=time.perf_counter(), val=validation.seconds, engine=ng.train.engine_stats(), jax=sum(JAX_TIME.values())
        )
        generations[-1]["bench_overhead_s"] = clock["last"] - now
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in generations[-1].items() if k != "nparams"}
        print(json.dumps(shown), flush=True)

    out_dir = tempfile.mkdtemp(prefix="ng-bench-search-")
    t0 = time.perf_counter()
    clock["last"] = t0
    population = ng.autofit.fit(
        x,
        y,
        key=jax.random.key(args.seed),
        out_dir=out_dir,
        population_size=args.population,
        max_generations=args.generations,
        fitness=fitness,
        evolution=evolution,
        callbacks=[record],
        progress=False,
        **({"precompile": False} if args.no_precompile else {}),
    )
    wall = time.perf_counter() - t0 - sum(g["bench_overhead_s"] for g in generations)
    # the evolution step that made generation g+1 ran inside generation g+1's interval
    for g, gen in enumerate(generations):
        gen["evolution_s"] = evolution.seconds[g - 1] if g >= 1 else 0.0
    best = population[0]
    return {
        "population": population,
        "x_val": x_val,
        "y_val": y_val,
        "generations": generations,
        "wall_s": wall,
        "evolution_s": sum(evolution.seconds),
        "best_test_accuracy": ng.evaluate_accuracy(best.graph, x_test, y_test),
        "out_dir": out_dir,
    }


def _flax_epoch_runner(graph, optimiser_lr, x, y, batch, compiler_options=None):
    """The hand-written loop of bench_train.py for an exported graph (batch-norm statistics as Flax state), its step
    compiled with XLA's defaults or ``compiler_options``."""
    import optax

    import naivega_jax as ng

    module, variables = ng.to_flax(graph)
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    opt = optax.adam(optimiser_lr)

    def step(carry, data):
        p, bs, s = carry
        xb, yb = data

        def loss_fn(pp):
            out, upd = module.apply({"params": pp, "batch_stats": bs}, xb, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(out, yb).mean(), upd.get("batch_stats", {})

        (loss, new_bs), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, s = opt.update(grads, s, p)
        return (optax.apply_updates(p, updates), new_bs, s), loss

    n = x.shape[0]
    nb = n // batch
    carry = (params, stats, opt.init(params))
    t0 = time.perf_counter()
    run = jax.jit(step, donate_argnums=0).lower(carry, (x[:batch], y[:batch])).compile(compiler_options)
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)

    def epoch():
        state = jax.device_put((params, stats, opt.init(params)), may_alias=False)
        perm = rng.permutation(n)[: nb * batch]
        xb = x[perm].reshape(nb, batch, *x.shape[1:])
        yb = y[perm].reshape(nb, batch)
        for i in range(nb):
            state, _ = run(state, (xb[i], yb[i]))
        jax.block_until_ready(state)
        return nb * batch

    return compile_s, epoch


def _without_utility(graph):
    """The graph without stored activation utilities: the hand-written loop computes none, so neither does the
    engine in the throughput comparison (the search's own training does; its cost is in the search figures)."""
    from naivega_jax.graph.internal import UTILITY

    state = {
        v: {k: a for k, a in entry.items() if k != UTILITY}
        for v, entry in graph.state.items()
        if set(entry) - {UTILITY}
    }
    return graph.replace(state=state)


#: The engine/Flax throughput ratios ``flax_comparison`` gives per architecture, by a short label.
RATIO_FIELDS = (
    ("full", "throughput_ratio"),
    ("max", "throughput_ratio_max_tier"),
    ("full_same_options", "throughput_ratio_same_options"),
    ("max_same_options", "throughput_ratio_max_tier_same_options"),
    ("search_call", "search_call_throughput_ratio"),
)


def _throughput_ratio(engine_examples: int, flax_examples: int, engine_s: float, flax_s: float) -> float:
    """Engine throughput / Flax throughput, from the examples and seconds of an epoch of each."""
    return round((engine_examples / engine_s) / (flax_examples / flax_s), 3)


def flax_comparison(population, x, y, models: int, reps: int) -> list[dict]:
    """Per distinct architecture of ``population``: steady epochs of the engine (full tier, which the search's
    calls get, and max tier, which long calls get) vs the Flax loop; the first call of each (one epoch, compile
    included; the engine's tier chosen as in the search); and a search's call from nothing cached (the application's
    epochs, compile included). The Flax loop is also compiled with each tier's options (``*_same_options``): what
    the engine's step costs apart from the compiler's settings."""
    import naivega_jax as ng
    from naivega_jax.train._cache import tier_options

    seen, rows = set(), []
    for cand in population:
        key = (cand.graph.spec, cand.batch_size)
        if key in seen or len(rows) >= models:
            continue
        seen.add(key)
        graph, batch = _without_utility(cand.graph), cand.batch_size
        t0 = time.perf_counter()
        flax_compile, flax_epoch = _flax_epoch_runner(graph, 1e-3, x, y, batch)
        flax_epoch()
        flax_first = time.perf_counter() - t0
        kw = dict(optimiser=ng.Adam(1e-3), batch_size=batch)
        ng.train.clear_compile_cache(jax_caches=False)
        fast0 = ng.train.engine_stats()["fast_compiles"]
        t0 = time.perf_counter()
        ng.train_graph(jax.random.key(0), graph, x, y, **kw)
        auto_first = time.perf_counter() - t0
        auto_fast = ng.train.engine_stats()["fast_compiles"] > fast0
        first = ng.train_graph(jax.random.key(0), graph, x, y, compile_tier="full", **kw)
        first_max = ng.train_graph(jax.random.key(0), graph, x, y, compile_tier="max", **kw)
        same = {t: _flax_epoch_runner(graph, 1e-3, x, y, batch, tier_options("cpu", t))[1] for t in ("full", "max")}
        for run in same.values():
            run()
        flax_t, eng_t, max_t, same_t = [], [], [], {"full": [], "max": []}
        rows_flax = 0
        for i in range(reps):
            t0 = time.perf_counter()
            rows_flax = flax_epoch()
            flax_t.append(time.perf_counter() - t0)
            for tier, run in same.items():
                t0 = time.perf_counter()
                run()
                same_t[tier].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = ng.train_graph(jax.random.key(i + 1), graph, x, y, compile_tier="full", **kw)
            eng_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r_max = ng.train_graph(jax.random.key(i + 1), graph, x, y, compile_tier="max", **kw)
            max_t.append(time.perf_counter() - t0)
            assert r.compiles == r_max.compiles == 0, "a steady engine call compiled"
        f_s, e_s, m_s = statistics.median(flax_t), statistics.median(eng_t), statistics.median(max_t)
        same_s = {tier: statistics.median(times) for tier, times in same_t.items()}
        ratio = functools.partial(_throughput_ratio, x.shape[0], rows_flax)
        # A search's call: a new architecture trained for the application's epochs, compile included, nothing
        # cached (a fresh persistent cache too); the Flax loop's is its first epoch (compile included) and the rest
        # at its steady pace.
        epochs = ng.autofit.default_epochs(x.shape[0])
        ng.train.clear_compile_cache()
        _configure_xla_cache("fresh")
        t0 = time.perf_counter()
        call = ng.train_graph(jax.random.key(0), graph, x, y, epochs=epochs, **kw)
        engine_call = time.perf_counter() - t0
        flax_call = flax_first + (epochs - 1) * f_s
        rows.append(
            {
                "nparams": ng.nparams(graph),
                "vertices": len(graph.vertex_names),
                "batch_size": batch,
                "driver": first.driver,
                "flax_compile_s": round(flax_compile, 3),
                "engine_full_compile_s": round(first.compile_seconds, 3),
                "flax_epoch_ms": round(f_s * 1e3, 1),
                "engine_epoch_ms": round(e_s * 1e3, 1),
                "flax_samples_per_s": round(rows_flax / f_s),
                "engine_samples_per_s": round(x.shape[0] / e_s),
                "throughput_ratio": ratio(e_s, f_s),
                "engine_max_compile_s": round(first_max.compile_seconds, 3),
                "engine_max_epoch_ms": round(m_s * 1e3, 1),
                "throughput_ratio_max_tier": ratio(m_s, f_s),
                "flax_full_options_epoch_ms": round(same_s["full"] * 1e3, 1),
                "flax_max_options_epoch_ms": round(same_s["max"] * 1e3, 1),
                "throughput_ratio_same_options": ratio(e_s, same_s["full"]),
                "throughput_ratio_max_tier_same_options": ratio(m_s, same_s["max"]),
                "first_epoch_s_flax": round(flax_first, 3),
                "first_epoch_s_engine_auto": round(auto_first, 3),
                "engine_auto_tier": "fast" if auto_fast else "full",
                "search_call_epochs": epochs,
                "search_call_s_flax": round(flax_call, 3),
                "search_call_s_engine": round(engine_call, 3),
                "search_call_compiles": call.compiles,
                "search_call_throughput_ratio": round(flax_call / engine_call, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(result: dict) -> dict:
    gens = result["generations"]
    wall = result["wall_s"]
    jax_compile = sum(g["jax_compile_s"] for g in gens)
    engine_compile = sum(g["engine_compile_s"] for g in gens)
    compiles = sum(g["engine_compiles"] for g in gens)
    hits = sum(g["engine_hits"] for g in gens)
    evo_shares = [g["evolution_s"] / g["wall_s"] for g in gens[1:]]
    return {
        "wall_s": round(wall, 1),
        "jax_compile_s": round(jax_compile, 1),
        "jax_compile_share": round(jax_compile / wall, 3),
        "engine_compile_s": round(engine_compile, 1),
        "engine_compile_share": round(engine_compile / wall, 3),
        "engine_fast_compiles": sum(g["engine_fast_compiles"] for g in gens),
        "engine_background_compiles": sum(g["engine_background_compiles"] for g in gens),
        "engine_background_compile_s": round(sum(g["engine_background_compile_s"] for g in gens), 1),
        "train_s": round(sum(g["train_s"] for g in gens), 1),
        "train_share": round(sum(g["train_s"] for g in gens) / wall, 3),
        "validation_s": round(sum(g["validation_s"] for g in gens), 1),
        "evolution_s": round(result["evolution_s"], 2),
        "evolution_share_per_generation_median": round(statistics.median(evo_shares), 4) if evo_shares else None,
        "evolution_share_per_generation_max": round(max(evo_shares), 4) if evo_shares else None,
        "engine_compiles": compiles,
        "engine_cache_hits": hits,
        "train_compiles": sum(g["train_compiles"] for g in gens),
        "train_cache_hits": sum(g["train_hits"] for g in gens),
        "jax_compile_by_phase_s": {k: round(v, 1) for k, v in JAX_TIME.items()},
        "jax_compile_counts": dict(JAX_COUNT),
        "best_val_accuracy": max(g["best_val_accuracy"] or 0.0 for g in gens),
        "best_fitness": max(g["best_fitness"] or 0.0 for g in gens),
        "best_test_accuracy": round(result["best_test_accuracy"], 4),
    }


def main() -> None:
    parser = _harness.parser(
        __doc__, quick=f"population 4, 2 generations of 1 epoch, {QUICK_EXAMPLES} examples, no Flax comparison"
    )
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per generation (default: the application's, default_epochs)"
    )
    parser.add_argument(
        "--no-precompile", action="store_true", help="no background compilation (fit's precompile=False)"
    )
    parser.add_argument("--xla-cache", default="fresh", help='"fresh" (a new temporary dir), "off", or a directory')
    parser.add_argument("--flax-models", type=int, default=6, help="architectures compared with Flax (0: none)")
    parser.add_argument("--flax-reps", type=int, default=5)
    parser.add_argument("--json", help="write the summary and per-generation figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.population, args.generations = min(args.population, 4), min(args.generations, 2)
        args.epochs, args.flax_models = 1, 0
    cache = _configure_xla_cache(args.xla_cache)
    env = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": os.getloadavg(),
        "xla_cache": cache,
        "args": vars(args),
    }
    print(json.dumps(env), flush=True)
    x, y, x_test, y_test = load_data(args.quick)
    result = run_search(args, x, y, x_test, y_test)
    print(json.dumps({"evolution_s_per_generation": [round(g["evolution_s"], 3) for g in result["generations"]]}))
    summary = summarise(result)
    summary["load_after_search"] = os.getloadavg()
    print(json.dumps(summary), flush=True)
    rows = []
    if args.flax_models:
        from naivega_jax.autofit import prepare_data

        x_tr, y_tr, *_ = prepare_data(x, y, 0.1)
        rows = flax_comparison(result["population"], x_tr, y_tr, args.flax_models, args.flax_reps)
        for _, field in RATIO_FIELDS:
            ratios = [r[field] for r in rows]
            summary[f"flax_{field}_median"] = statistics.median(ratios)
            summary[f"flax_{field}_min"] = min(ratios)
        print(json.dumps({k: v for k, v in summary.items() if k.startswith("flax_")}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"env": env, "summary": summary, "generations": result["generations"], "flax": rows},
                f,
                indent=1,
                default=str,
            )
    columns = (
        [k for k in result["generations"][0] if k not in ("nparams", "batch_sizes")] if result["generations"] else None
    )
    _harness.write_result(
        "bench_search",
        args,
        summary=summary,
        rows=result["generations"],
        columns=columns,
        extra={"flax": rows, "xla_cache": cache},
    )
    print(f"run directory: {result['out_dir']}", file=sys.stderr)


if __name__ == "__main__":
    main()
