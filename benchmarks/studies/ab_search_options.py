"""Which search options pay? The default search on MNIST-1D with one option changed, over seeds.

Arms (each the README's main job, ``ng.autofit.fit`` with its defaults on MNIST-1D, test accuracy of the best):

* ``default``: as it is (a screened first generation, kept optimiser states);
* ``unscreened``: ``screening=1``, upstream's first generation of ``population_size`` members;
* ``digits3``: unscreened, and the validation fitness ``AccuracyVsSize(digits=3)`` instead of 2 digits: with 400
  validation examples every distinct accuracy stays distinct, so size only breaks exact ties (fit's own training
  otherwise: ``TrainThenFitness`` with fit's loss, epochs and kept optimiser states);
* ``flatten``: the default search in ``default_space(..., flatten_head=True)``, whose third head is the
  hand-written CNN's flatten into dense layers;
* ``final02``: the default search, then ``final_training=0.2``: the best member trained on for a quarter of the
  search's examples more, with a decaying learning rate (25% more examples in all).

Every run is its own process with an empty persistent compilation cache (as ``bench_baselines.py`` runs them), so
no run reads another's compiles. One JSON per run goes to ``--out``; runs whose JSON exists are skipped; the table
(mean +- sample sd over seeds, and each seed) is printed at the end.

Run: ``.venv/bin/python benchmarks/studies/ab_search_options.py --arms default unscreened --seeds 0 1 2 3 4``.
Findings: benchmarks/RESULTS.md, "Screening the first generation".
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = ("default", "unscreened", "digits3", "flatten", "final02")
DEFAULT_OUT = HERE.parent / "results" / "ab_search_options"


def run_arm(arm: str, seed: int, json_path: Path) -> None:
    """One run in this process (the ``_run`` subcommand): the arm's ``fit`` on MNIST-1D, its result to ``json_path``."""
    import jax
    import optax

    import naivega_jax as ng
    from naivega_jax.autofit import prepare_data

    x, y, xt, yt = ng.datasets.load("mnist1d")
    options: dict = {}
    if arm == "unscreened":
        options["screening"] = 1
    elif arm == "digits3":
        split = inspect.signature(ng.autofit.fit).parameters["validation_split"].default
        x_tr, y_tr, x_val, y_val, _, _ = prepare_data(x, y, split, "classification")
        options["fitness"] = ng.TrainThenFitness(
            (x_tr, y_tr),
            fitness=ng.evolution.AccuracyVsSize((x_val, y_val), digits=3),
            loss=optax.softmax_cross_entropy_with_integer_labels,
            invalid_fitness=0.0,
            epochs=ng.autofit.default_epochs(x_tr.shape[0]),
            keep_optimiser_state=True,
        )
    elif arm == "flatten":
        options["space"] = ng.autofit.default_space(x.shape[1:], 10, flatten_head=True)
    elif arm == "final02":
        options["final_training"] = 0.2
    with tempfile.TemporaryDirectory() as out:
        pop = ng.autofit.fit(x, y, key=jax.random.key(seed), out_dir=out, test_data=(xt, yt), progress=False, **options)
    summary = pop.info["summary"]
    json_path.write_text(
        json.dumps(
            {
                "arm": arm,
                "seed": seed,
                "test_accuracy": summary["best"]["test_accuracy"],
                "nparams": summary["best"]["nparams"],
                "totals": summary["totals"],
                "compiles": summary["engine"]["compiles"],
            },
            indent=1,
        )
    )


def table(out: Path, arms, seeds) -> str:
    lines = ["| arm | seeds | test accuracy % | per seed | train examples | wall s |", "|---|---|---|---|---|---|"]
    for arm in arms:
        runs = [json.loads(p.read_text()) for s in seeds if (p := out / f"{arm}-seed{s}.json").exists()]
        if not runs:
            continue
        acc = [100 * r["test_accuracy"] for r in runs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        per_seed = " ".join(f"{a:.1f}" for a in acc)
        examples = statistics.mean(r["totals"]["train_examples"] for r in runs)
        wall = statistics.mean(r["totals"]["wall_seconds"] for r in runs)
        mean = f"{statistics.mean(acc):.2f} +- {sd:.2f}"
        lines.append(f"| {arm} | {len(runs)} | {mean} | {per_seed} | {examples:,.0f} | {wall:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--_run", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._run:
        arm, seed = args._run
        run_arm(arm, int(seed), args.out / f"{arm}-seed{seed}.json")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for arm in args.arms:
        for seed in args.seeds:
            if (args.out / f"{arm}-seed{seed}.json").exists():
                continue
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NAIVEGA_JAX_XLA_CACHE": cache}
                cmd = [sys.executable, __file__, "--out", str(args.out), "--_run", arm, str(seed)]
                subprocess.run(cmd, env=env, check=True, cwd=HERE.parent.parent)
            print(f"{arm} seed {seed} done", flush=True)
    print(table(args.out, args.arms, args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
