"""GPU check: a search generation's wall time vs its members' steady training time in a Flax loop.

Random CIFAR-shaped data (``--n`` images 32x32x3, 10 classes, no downloads; the last 10% is the validation part, as
``ng.autofit.fit`` splits it). The search is ``ng.autofit.fit`` itself (AutoFlux defaults: the default space,
upstream's optimisers and batch sizes, 2 elites + tournament with crossover and mutation), with
``--population`` members and one epoch per generation, in a fresh run directory and a fresh persistent compilation
cache (first-process figures: nothing compiled before).

A generation's wall time is the time from the end of the previous generation (for the first: from the call of
``fit``, so it includes sampling the initial population) to the end of its scoring: evolution, training,
validation, checkpoint and best-model writes. It is measured from ``fit``'s callback, and the time spent inside the
callback is excluded.

Inside the callback, every member is trained by the hand-written Flax/optax loop (``flax_loop.py``: ``ng.to_flax``
export, one jitted step, the member's own optimiser and batch size, the same training data): compiled, one warm-up
epoch, then the best of two timed epochs is its steady-state epoch. The floor of a generation is the sum over its
members (equal specs are measured once); ratio = wall / floor (target <= 1.5). The Flax loop is a Python loop of
a jitted step, as most hand-written loops are; on a GPU the engine's ``lax.scan`` epoch driver can beat it (an
H200 ran a small CNN's epoch 3x faster as a scan when this engine was designed), so a ratio below 1 is
possible. A member the Flax loop fails on is reported and left out of the floor (the ratio is then an upper bound,
flagged ``floor_complete: false``).

Time guard: no new generation starts when the elapsed time plus the most expensive generation so far (search and
floor together) would pass ``--budget`` seconds; on SIGTERM (``timeout`` in gpu_check.sh) the figures of the
finished generations are printed. The last line is one JSON object: device, versions, ratio per generation, their
median and maximum.

``--tiny`` is a smoke setting for a CPU (384 images, population 3, 2 generations): its ratios mean nothing.

Run: ``bash benchmarks/gpu_check.sh`` (one GPU), ``bash benchmarks/gpu_check.sh --tiny`` (CPU smoke test).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from importlib import metadata  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flax_loop import flax_epoch_runner  # noqa: E402

import naivega_jax as ng  # noqa: E402

TARGET = 1.5


class Stop(BaseException):
    """Ends the search early (time guard or SIGTERM); the finished generations keep their figures. A
    ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` in the search swallows it."""


def _on_sigterm(signum, frame):
    raise Stop("SIGTERM (the time limit of gpu_check.sh)")


def environment(args: argparse.Namespace) -> dict:
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    for plugin in ("jax-cuda12-plugin", "jax-cuda13-plugin"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[plugin] = metadata.version(plugin)
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "devices": len(jax.devices()),
        "python": platform.python_version(),
        "versions": versions,
        "naivega_jax_commit": commit,
        "cpus": os.cpu_count(),
        "args": vars(args),
    }


class Check:
    """``fit``'s callback: times each generation, then measures its members' steady epochs in the Flax loop."""

    def __init__(self, x_tr: np.ndarray, y_tr: np.ndarray, generations: int, budget: float):
        self.x_tr, self.y_tr = x_tr, y_tr
        self.generations = generations
        self.budget = budget
        self.rows: list[dict] = []
        self.steady: dict = {}
        self.mark = time.perf_counter()
        self.engine = ng.train.engine_stats()
        self.costs: list[float] = []

    def member_epoch(self, candidate: ng.Candidate) -> float:
        """The member's steady one-epoch time in the Flax loop (memoised by spec, optimiser type and batch size)."""
        optimiser = candidate.optimiser if candidate.optimiser is not None else ng.Adam(1e-3)
        key = (candidate.graph.spec, optimiser.skeleton(), candidate.batch_size)
        if key not in self.steady:
            _, epoch = flax_epoch_runner(
                candidate.graph, optimiser.to_optax(), self.x_tr, self.y_tr, candidate.batch_size
            )
            epoch()
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                epoch()
                times.append(time.perf_counter() - t0)
            self.steady[key] = min(times)
        return self.steady[key]

    def __call__(self, population: ng.Population) -> None:
        wall = time.perf_counter() - self.mark
        engine = ng.train.engine_stats()
        delta = {k: engine[k] - self.engine.get(k, 0) for k in ("compiles", "cache_hits", "compile_seconds")}
        members = list(population)
        row = {
            "generation": population.generation,
            "wall_s": round(wall, 3),
            "engine_compile_s": round(delta["compile_seconds"], 3),
            "engine_train_s": round(sum(float(c.info.get("train_seconds", 0.0)) for c in members), 3),
            "compiles": int(delta["compiles"]),
            "cache_hits": int(delta["cache_hits"]),
            "batch_sizes": [c.batch_size for c in members],
            "engine_failures": sum("failure" in c.info for c in members),
            "best_fitness": max((c.fitness for c in members if c.fitness is not None), default=None),
        }
        t_floor = time.perf_counter()
        floor, failed = 0.0, []
        for i, c in enumerate(members):
            try:
                floor += self.member_epoch(c)
            except Exception as e:  # a member the Flax loop cannot train must not end the check
                failed.append({"member": i, "error": f"{type(e).__name__}: {str(e)[:300]}"})
                traceback.print_exc(file=sys.stderr)
        row["handwritten_steady_sum_s"] = round(floor, 3)
        row["floor_complete"] = not failed
        if failed:
            row["floor_failures"] = failed
        row["ratio"] = round(wall / floor, 3) if floor > 0 else None
        row["floor_measure_s"] = round(time.perf_counter() - t_floor, 2)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        self.costs.append(wall + (time.perf_counter() - t_floor))
        elapsed = time.perf_counter() - T_START
        if population.generation < self.generations and elapsed + max(self.costs) > self.budget:
            raise Stop(
                f"time guard: {elapsed:.0f} s elapsed + {max(self.costs):.0f} s for a generation > budget "
                f"{self.budget:.0f} s"
            )
        self.engine = ng.train.engine_stats()
        self.mark = time.perf_counter()


def summary(env: dict, rows: list[dict], stopped: str | None) -> dict:
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    out = {
        "device_kind": env["device_kind"],
        "backend": env["backend"],
        "jax": env["versions"].get("jax"),
        "population": env["args"]["population"],
        "n_images": env["args"]["n"],
        "generations_done": len(rows),
        "ratios": [r["ratio"] for r in rows],
        "walls_s": [r["wall_s"] for r in rows],
        "floors_s": [r["handwritten_steady_sum_s"] for r in rows],
        "engine_compile_s": [r["engine_compile_s"] for r in rows],
        "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
        "target": TARGET,
        "met_median": bool(ratios) and statistics.median(ratios) <= TARGET,
        "met_every_generation": bool(ratios) and max(ratios) <= TARGET,
        "floors_complete": bool(rows) and all(r["floor_complete"] for r in rows),
        "stopped_early": stopped,
        "total_s": round(time.perf_counter() - T_START, 1),
    }
    if env["args"]["tiny"]:
        out["note"] = "--tiny smoke test: these ratios mean nothing"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000, help="images (CIFAR-10 has 50,000 training images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds: start no generation that would pass it")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: 384 images, population 3, 2 generations")
    parser.add_argument("--json", help="also write the rows and the summary to this file")
    args = parser.parse_args()
    if args.tiny:
        args.population, args.generations, args.n = 3, 2, 384
    if args.population < 3 or args.generations < 1 or args.n < 100:
        parser.error("need --population >= 3, --generations >= 1, --n >= 100")
    signal.signal(signal.SIGTERM, _on_sigterm)
    work = tempfile.mkdtemp(prefix="ng-gpu-check-")
    ng.train.set_compilation_cache(os.path.join(work, "xla-cache"))
    env = environment(args)
    print(json.dumps({"environment": env}), flush=True)

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.n, 32, 32, 3), dtype=np.float32)
    y = (np.arange(args.n) % 10).astype(np.int32)  # every class in the validation part (the last 10%)
    x_tr, y_tr, _, _, _, _ = ng.autofit.prepare_data(x, y, 0.1)
    check = Check(x_tr, y_tr, args.generations, args.budget)
    stopped, failed = None, None
    try:
        ng.autofit.fit(
            x,
            y,
            key=jax.random.key(args.seed),
            out_dir=os.path.join(work, "run"),
            population_size=args.population,
            max_generations=args.generations,
            epochs_per_generation=1,
            callbacks=[check],
            progress=False,
        )
    except Stop as e:
        stopped = str(e)
    except Exception as e:  # the search itself failed: still print the finished generations
        failed = f"{type(e).__name__}: {str(e)[:500]}"
        traceback.print_exc(file=sys.stderr)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    out = summary(env, check.rows, stopped)
    if failed:
        out["search_failed"] = failed
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "generations": check.rows, "summary": out}, f, indent=1, default=str)
    print(json.dumps(out), flush=True)
    return 0 if check.rows and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
