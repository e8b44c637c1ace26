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
  search's examples more, with a decaying learning rate (25% more examples in all);
* ``final6``: the same examples as the default search, the last sixth of its generations' examples spent on a final
  phase instead: ``5F`` generations (``F`` = ``--budget-factor``), then the best trains the examples the other ``F``
  generations would have (``ng.autofit.search_budget`` of ``6F`` generations minus that of ``5F``), so random search
  at the default search's examples is its baseline too;
* ``anneal``: ``anneal_last=True``: the last generation's members train their epochs with a step-decaying learning
  rate (the final phase's steps: half at the rate, 0.3 of them at 0.3 times it, the rest at 0.1 times), the same
  examples and generations as the default search;
* ``anneal_all``: every generation's members train their epochs in those steps (the learning rate restarts at each
  generation, with the optimiser state kept), so every selection compares members that have settled: fit's own
  training (screened, states kept, ``AccuracyVsSize``) given as a ``TrainThenFitness(learning_rate_steps=...)``.

* ``screen_share``: the screen grows with the budget, now ``fit``'s default (``screen_scale``): at ``6F``
  generations its 24 members train ``2F`` epochs each (a fifth of the unscreened search's ``6F`` generations x 8
  members x 5 epochs, as the 2 epochs are at ``F`` = 1), and the run ends at generation ``1 + round(4.8F)`` (20 at
  ``F`` = 4), at about the examples of the fixed screen's run. The arm ran this as a patch of the screen's epochs
  with ``max_generations=20`` before ``fit`` did it; ``fit`` now runs the same (seed for seed the same results), so
  the arm is the default;
* ``screen_share_digits3``: the default (``screen_share``) with fit's own training and ``AccuracyVsSize(digits=3)``;
* ``fixed_screen``: the screen as it was before it grew with the budget: 2 epochs a member at any length
  (``screen_scale`` patched to 1 in the arm's process), ``6F`` generations.
* ``screen_share8``: a screen of twice the default's share: ``SCREEN_GENERATIONS`` patched to 3, so ``screen_scale``
  is ``max_generations // 3`` (8 at 24 generations: 16 epochs a member; the screen counts as 9 generations, so the
  run ends at generation 16, having spent about 3% more examples than the default's run, from rounding the screen to
  whole generations).

A prototype that did not pay is kept as a patch, not as an arm: ``prototypes/screen_halving.patch`` (a screen that
draws twice the members and halves them, see its header).

``--budget-factor F`` runs every arm with ``6F`` generations (the default search's budget times ``F``); its JSONs are
named ``<arm>-F<F>-seed<S>.json`` (``F`` 1: ``<arm>-seed<S>.json``).

Every run is its own process with an empty persistent compilation cache (as ``bench_baselines.py`` runs them), so
no run reads another's compiles. One JSON per run goes to ``--out``; runs whose JSON exists are skipped; the table
(mean +- sample sd over seeds, and each seed) is printed at the end.

Run: ``.venv/bin/python benchmarks/studies/ab_search_options.py --arms default unscreened --seeds 0 1 2 3 4``.
Findings: benchmarks/RESULTS.md, "Screening the first generation" and "a screen that grows with the budget".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = (
    "default",
    "unscreened",
    "digits3",
    "flatten",
    "final02",
    "final6",
    "anneal",
    "anneal_all",
    "screen_share",
    "screen_share_digits3",
    "fixed_screen",
    "screen_share8",
)
DEFAULT_OUT = HERE.parent / "results" / "ab_search_options"


def own_fitness(x, y, digits: int = 2, **training):
    """fit's own training as a ``TrainThenFitness`` on fit's split of ``(x, y)`` (its loss and epochs, kept optimiser
    states, ``AccuracyVsSize`` with ``digits`` on the validation part), with ``training`` changed."""
    import optax

    import naivega_jax as ng
    from naivega_jax.autofit import FitSettings, prepare_data

    x_tr, y_tr, x_val, y_val, _, _ = prepare_data(x, y, FitSettings().validation_split, "classification")
    return ng.TrainThenFitness(
        (x_tr, y_tr),
        fitness=ng.evolution.AccuracyVsSize((x_val, y_val), digits=digits),
        loss=optax.softmax_cross_entropy_with_integer_labels,
        invalid_fitness=0.0,
        epochs=ng.autofit.default_epochs(x_tr.shape[0]),
        keep_optimiser_state=True,
        **training,
    )


def run_arm(arm: str, seed: int, json_path: Path, factor: int = 1) -> None:
    """One run in this process (the ``_run`` subcommand): the arm's ``fit`` on MNIST-1D, its result to ``json_path``."""
    import jax

    import naivega_jax as ng
    from naivega_jax.autofit._final import LR_STEPS
    from naivega_jax.autofit._fit import SCREENING

    x, y, xt, yt = ng.datasets.load("mnist1d")
    options: dict = {}
    if arm == "unscreened":
        options["screening"] = 1
    elif arm == "digits3":
        options["fitness"] = own_fitness(x, y, digits=3)
    elif arm == "flatten":
        options["space"] = ng.autofit.default_space(x.shape[1:], 10, flatten_head=True)
    elif arm == "final02":
        options["final_training"] = 0.2
    elif arm == "anneal":
        options["anneal_last"] = True
    elif arm == "anneal_all":
        options["screening"] = SCREENING  # fit's default, which a fitness of one's own does not get
        options["fitness"] = own_fitness(x, y, learning_rate_steps=LR_STEPS)
    elif arm == "final6":
        n_train = ng.autofit.training_size(x.shape[0])
        search = ng.autofit.search_budget(n_train, max_generations=5 * factor)
        final = ng.autofit.search_budget(n_train, max_generations=6 * factor) - search
        options["max_generations"] = 5 * factor
        options["final_training"] = final / (final + search)  # fit trains share / (1 - share) x the search's examples
    elif arm == "screen_share_digits3":
        options["screening"] = SCREENING
        options["fitness"] = own_fitness(x, y, digits=3)
    elif arm == "fixed_screen":
        import naivega_jax.autofit._fit as fit_module

        fit_module.screen_scale = lambda max_generations, time_budget: 1  # this process only: the arm's screen
    elif arm == "screen_share8":
        import naivega_jax.autofit._run as run_module

        run_module.SCREEN_GENERATIONS = 3  # this process only: screen_scale is max_generations // 3
    options.setdefault("max_generations", 6 * factor)
    with tempfile.TemporaryDirectory() as out:
        pop = ng.autofit.fit(x, y, key=jax.random.key(seed), out_dir=out, test_data=(xt, yt), progress=False, **options)
    summary = pop.info["summary"]
    if summary["stopped"] != "max_generations":  # a signal stopped it: a cut-short search is not the arm's result
        raise SystemExit(f"{arm} seed {seed}: the search stopped by {summary['stopped']}; nothing recorded")
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


def _name(arm: str, seed: int | str, factor: int) -> str:
    return f"{arm}-seed{seed}.json" if factor == 1 else f"{arm}-F{factor}-seed{seed}.json"


def table(out: Path, arms, seeds, factor: int = 1) -> str:
    lines = ["| arm | seeds | test accuracy % | per seed | train examples | wall s |", "|---|---|---|---|---|---|"]
    for arm in arms:
        runs = [json.loads(p.read_text()) for s in seeds if (p := out / _name(arm, s, factor)).exists()]
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
    parser.add_argument("--budget-factor", type=int, default=1, help="every arm runs 6 x this many generations")
    parser.add_argument("--_run", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    factor = args.budget_factor
    if args._run:
        arm, seed = args._run
        run_arm(arm, int(seed), args.out / _name(arm, seed, factor), factor)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for arm in args.arms:
        for seed in args.seeds:
            if (args.out / _name(arm, seed, factor)).exists():
                continue
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NAIVEGA_JAX_XLA_CACHE": cache}
                cmd = [sys.executable, __file__, "--out", str(args.out), "--budget-factor", str(factor)]
                subprocess.run([*cmd, "--_run", arm, str(seed)], env=env, check=True, cwd=HERE.parent.parent)
            print(f"{arm} seed {seed} done", flush=True)
    print(table(args.out, args.arms, args.seeds, factor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
