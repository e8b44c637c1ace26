"""What the search adds to its conventional member: that member trained alone, as the final phase trains, for the
whole time budget.

Every Fashion-MNIST search has the CNN people write by hand in its first generation (``conventional_space``, Adam
1e-3 at batch size 32), and under a 15-minute budget it has so far been the member the final phase trained. This
study trains the same member (the same graph and weights as the seed's first generation holds: its last place) with
``train_best`` (the final phase's step-decayed learning rate, re-planned to the deadline) for ``--seconds`` from the
start, with no search before it, on the same training and validation split as ``fit``. Against the search's result
it says what the search's half of the time buys; against ``bench_baselines.py cnn`` (batch size 128, one constant
learning rate) it says what the training recipe alone is worth.

    .venv/bin/python benchmarks/studies/conventional_alone.py --seed 0 --seconds 900

One line of JSON (seed, parameters, final epochs, validation and test accuracy, wall seconds). Run it with nothing
else on the machine, as the seconds decide how much it trains. Findings: benchmarks/RESULTS.md, "Fashion-MNIST, 15
minutes" (session 14).
"""

from __future__ import annotations

import argparse
import inspect
import json

import jax
from probe_final_member import final_phase  # this directory's: the script's own path is first on sys.path

import naivega_jax as ng
from naivega_jax.autofit import default_members, default_space, initial_population
from naivega_jax.autofit._data import VALIDATION_SPLIT, prepare_data
from naivega_jax.autofit._fit import SCREENING

#: fit's default population size (the screen draws SCREENING times as many)
POPULATION = inspect.signature(ng.autofit.fit).parameters["population_size"].default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the seed a search would run with (default 0)")
    parser.add_argument("--seconds", type=float, default=900.0, help="training time (default 900: 15 minutes)")
    args = parser.parse_args()
    x, y, x_test, y_test = ng.datasets.load("fashion-mnist")
    x_tr, y_tr, x_val, y_val, in_shape, classes = prepare_data(x, y, VALIDATION_SPLIT)
    key = jax.random.key(args.seed)
    members = default_members(in_shape, int(classes.size))
    # fit draws its first generation from fold_in(key, 0); the conventional member takes the screen's last place
    size = POPULATION * SCREENING
    population = initial_population(
        jax.random.fold_in(key, 0), default_space(in_shape, int(classes.size)), in_shape, size, members=members
    )
    member = population[size - 1]
    splits = (x_tr, y_tr, x_val, y_val)
    result = {"seed": args.seed, **final_phase(key, member, splits, (x_test, y_test), args.seconds)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
