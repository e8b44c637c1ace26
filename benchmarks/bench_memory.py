"""Whether a long search runs in flat memory: the process's RSS once per generation of a real search.

Runs ``ng.autofit.fit`` as ``naivega fit --dataset digits`` does (the CLI's data, epochs per generation, test data
and plotting callbacks; population 8 and 63 generations by default: 504 candidate evaluations, 17-22 minutes on 2
shared cores) and after each generation's fitness samples:

* the resident set size (``VmRSS`` of ``/proc/self/status``) and its peak (``VmHWM``);
* the training engine's counters (``ng.train.engine_stats()``: compiles, executables held, evictions, clears of JAX's
  caches, releases of the C heap's free pages and the seconds they took), and every compile XLA made in the
  process (the engine's and those of JAX's own dispatch of eager operations), with their seconds;
* the entries of JAX's own registered in-process caches (tracing, lowering and dispatch caches; they hold
  jaxprs, MLIR modules and executables), Python's live object count, and with ``--tracemalloc`` the bytes
  Python's allocator holds (slow: ~2x the run time).

It writes one JSON (the settings, the machine and one row per generation), prints the curve, and judges the growth
after warm-up: RSS at the last generation against RSS after generation ``--warmup`` (default 10) must be within
10% (``--tolerance``). The exit status is 0 when it is, 1 otherwise.

Knobs for experiments (none changes the search's results): ``--max-entries``/``--clear-jax-every`` set the
engine's compile cache bounds, ``--no-release-heap`` stops the engine giving the C heap's free pages back after
its compiles (``ng.train.clear_compile_cache``); ``--trim`` calls glibc's ``malloc_trim(0)`` after each
generation, to tell memory held by live objects from memory freed but kept by the allocator.

The persistent XLA compilation cache is pointed at a fresh temporary directory unless ``--xla-cache DIR`` or
``--xla-cache off`` is given, so a run does not profit from earlier runs (a disk hit skips the compile).

Writes ``bench_memory.json`` and ``.md`` under ``--out`` (``benchmarks/_harness.py``: the growth judgement as the
summary, one row per generation); ``--json FILE`` also writes the report in the form of
``benchmarks/results/memory_after.json``. ``--quick`` is a smoke run (population 3, 2 generations of 1 epoch,
warm-up generation 1) whose exit status does not judge the growth (too few generations to mean anything).

Private names, on purpose: the engine's ``naivega_jax.train._cache.release_free_heap`` is wrapped to time it, and
JAX's ``jax._src.util._caches`` is where its in-process caches are registered; neither has a public form.

Run: ``nice -n 10 .venv/bin/python benchmarks/bench_memory.py --json benchmarks/results/memory.json``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import jax

import naivega_jax as ng

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness


def proc_status_mb(field: str = "VmRSS") -> float:
    """``field`` of ``/proc/self/status`` (``VmRSS``: resident now; ``VmHWM``: its peak) in MiB; NaN elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def jax_cache_entries() -> int:
    """Entries in JAX's registered in-process caches (what ``jax.clear_caches()`` empties)."""
    from jax._src import util

    total = 0
    for cache in list(util._caches.keys()):
        try:
            total += int(cache.cache_info().currsize)
        except Exception:  # a cache kind without cache_info (lu.cache's dict of dicts): count its keys
            with contextlib.suppress(Exception):
                total += len(cache.cache_keys())
    return total


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: returns freed heap memory to the system; False where there is no glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


XLA_COMPILES = {"count": 0, "seconds": 0.0}


def _on_duration(event: str, duration: float, **_: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        XLA_COMPILES["count"] += 1
        XLA_COMPILES["seconds"] += duration


jax.monitoring.register_event_duration_secs_listener(_on_duration)

HEAP_RELEASES = {"seconds": 0.0}


def _time_heap_releases() -> None:
    """Times the engine's ``release_free_heap`` calls (what giving the C heap back costs); nothing where the engine
    has none (the code before it did)."""
    from naivega_jax.train import _cache

    release = getattr(_cache, "release_free_heap", None)
    if release is None:
        return

    def timed() -> bool:
        t0 = time.perf_counter()
        try:
            return release()
        finally:
            HEAP_RELEASES["seconds"] += time.perf_counter() - t0

    _cache.release_free_heap = timed


class Sampler:
    """A ``fit`` callback: one row of measurements per generation."""

    def __init__(self, population: int, trim: bool, traced: bool):
        self.population, self.trim, self.traced = population, trim, traced
        self.rows: list[dict[str, float]] = []
        self.start = time.monotonic()

    def __call__(self, population: ng.Population) -> None:
        if self.trim:
            malloc_trim()
        stats = ng.train.engine_stats()
        row = {
            "generation": population.generation,
            "candidates": population.generation * self.population,
            "rss_mb": round(proc_status_mb("VmRSS"), 1),
            "peak_rss_mb": round(proc_status_mb("VmHWM"), 1),
            "compiles": int(stats["compiles"]),
            "entries": int(stats["entries"]),
            "evictions": int(stats["evictions"]),
            "jax_cache_clears": int(stats["jax_cache_clears"]),
            "xla_compiles": XLA_COMPILES["count"],
            "xla_compile_seconds": round(XLA_COMPILES["seconds"], 1),
            "heap_releases": int(stats.get("heap_releases", 0)),
            "heap_release_seconds": round(HEAP_RELEASES["seconds"], 3),
            "jax_cache_entries": jax_cache_entries(),
            "python_objects": len(gc.get_objects()),
            "lineage_events": sum(len(c.lineage) for c in population),
            "seconds": round(time.monotonic() - self.start, 1),
        }
        if self.traced:
            row["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
        self.rows.append(row)
        print(
            f"gen {row['generation']:3d}  candidates {row['candidates']:4d}  RSS {row['rss_mb']:7.1f} MB  "
            f"compiles {row['compiles']:4d} (XLA {row['xla_compiles']:4d})  held {row['entries']:3d}  "
            f"jax cache entries {row['jax_cache_entries']:5d}  objects {row['python_objects']:8d}  "
            f"heap releases {row['heap_releases']:4d} ({row['heap_release_seconds']:.2f} s)  {row['seconds']:6.0f} s"
            + (f"  traced {row['traced_mb']:.1f} MB" if self.traced else ""),
            flush=True,
        )


def growth(rows: list[dict[str, float]], warmup: int) -> dict[str, float]:
    """RSS at the last generation against RSS after generation ``warmup``, and MB per candidate in between."""
    base = next(r for r in rows if r["generation"] >= warmup)
    last = rows[-1]
    candidates = last["candidates"] - base["candidates"]
    return {
        "warmup_generation": base["generation"],
        "rss_warmup_mb": base["rss_mb"],
        "rss_last_mb": last["rss_mb"],
        "growth": last["rss_mb"] / base["rss_mb"] - 1,
        "mb_per_candidate": (last["rss_mb"] - base["rss_mb"]) / candidates if candidates else float("nan"),
    }


def main() -> int:
    parser = _harness.parser(
        __doc__, quick="population 3, 2 generations of 1 epoch, warm-up generation 1, exit status 0 whatever the growth"
    )
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=63)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per generation (default: the CLI's)")
    parser.add_argument("--warmup", type=int, default=10, help="the generation whose RSS is the baseline")
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed growth after the warm-up")
    parser.add_argument("--no-plots", action="store_true", help="leave out the CLI's plotting callbacks")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after every generation")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python's allocations (slow)")
    parser.add_argument("--max-entries", type=int, default=None, help="the engine's executable cache size")
    parser.add_argument("--clear-jax-every", type=int, default=None, help="compiles between clears of JAX's caches")
    parser.add_argument("--no-release-heap", action="store_true", help="the engine keeps the C heap's free pages")
    parser.add_argument("--xla-cache", default="fresh", help='"fresh" (a new temporary dir), "off", or a directory')
    parser.add_argument("--out-dir", default=None, help="the run directory (default: a new temporary one)")
    parser.add_argument("--json", default=None, help="where to write the rows (default: print only)")
    parser.add_argument("--label", default="", help="a note stored in the JSON")
    args = parser.parse_args()
    if args.quick:
        args.population, args.generations, args.warmup = 3, min(args.generations, 2), 1
        args.epochs = args.epochs or 1

    from naivega_jax.autofit import default_epochs, training_size
    from naivega_jax.plot import PlotFitness, ScatterBatchSize, ScatterOpt, ScatterPop

    cache = _harness.configure_xla_cache(args.xla_cache)
    _time_heap_releases()
    if args.max_entries is not None or args.clear_jax_every is not None or args.no_release_heap:
        bounds = {"max_entries": args.max_entries, "clear_jax_every": args.clear_jax_every}
        if args.no_release_heap:
            bounds["release_heap"] = False
        ng.train.clear_compile_cache(**bounds)
    if args.tracemalloc:
        tracemalloc.start()
    x_tr, y_tr, x_te, y_te = ng.datasets.load(args.dataset)
    epochs = args.epochs or default_epochs(training_size(x_tr.shape[0]))  # as the CLI
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="ng-mem-"))
    sampler = Sampler(args.population, args.trim, args.tracemalloc)
    callbacks = (
        [] if args.no_plots else [cls(out / "plots") for cls in (PlotFitness, ScatterPop, ScatterOpt, ScatterBatchSize)]
    )
    rss_start = proc_status_mb()
    print(
        f"bench_memory: {args.dataset}, population {args.population}, {args.generations} generations of {epochs} "
        f"epochs; RSS {rss_start:.1f} MB at the start; run in {out}",
        flush=True,
    )
    t0 = time.monotonic()
    ng.autofit.fit(
        x_tr,
        y_tr,
        key=jax.random.key(args.seed),
        out_dir=out,
        population_size=args.population,
        max_generations=args.generations,
        callbacks=[*callbacks, sampler],
        epochs_per_generation=epochs,
        progress=False,
        test_data=(x_te, y_te),
    )
    wall = time.monotonic() - t0
    rows = sampler.rows
    result = growth(rows, args.warmup)
    if not args.trim:
        malloc_trim()
        result["rss_after_final_trim_mb"] = round(proc_status_mb(), 1)
    result["passed"] = result["growth"] <= args.tolerance
    record = _harness.machine()
    report = {
        "label": args.label,
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "label")} | {"epochs": epochs},
        "xla_cache": cache,
        "machine": record,
        "rss_start_mb": round(rss_start, 1),
        "wall_seconds": round(wall, 1),
        "summary": result,
        "rows": rows,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    _harness.write_result(
        "bench_memory",
        args,
        summary={**result, "wall_seconds": round(wall, 1), "rss_start_mb": round(rss_start, 1)},
        rows=rows,
        extra={"settings": report["settings"], "xla_cache": cache},
        record=record,
    )
    marks = sorted({r["generation"] for r in rows} & {1, 5, 10, 20, 30, 40, 50, 63, rows[-1]["generation"]})
    print("generation: " + "  ".join(f"{g:>7d}" for g in marks))
    by_gen = {r["generation"]: r for r in rows}
    print("RSS MB:     " + "  ".join(f"{by_gen[g]['rss_mb']:7.1f}" for g in marks))
    print(
        f"RSS after generation {result['warmup_generation']}: {result['rss_warmup_mb']:.1f} MB, at the end "
        f"{result['rss_last_mb']:.1f} MB: {100 * result['growth']:+.1f}% ({result['mb_per_candidate']:.2f} MB per "
        f"candidate); {'within' if result['passed'] else 'NOT within'} {100 * args.tolerance:.0f}%"
        + (
            f"; after malloc_trim {result['rss_after_final_trim_mb']:.1f} MB"
            if "rss_after_final_trim_mb" in result
            else ""
        )
        + f"; {wall:.0f} s"
    )
    return 0 if result["passed"] or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
