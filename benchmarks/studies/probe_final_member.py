"""Which member should a timed final phase train? Trains chosen members of a finished Fashion-MNIST run's checkpoint
as ``fit``'s final phase would, each for the same seconds, and reports their validation and test accuracy.

``fit`` under a time budget trains the member with the best validation fitness in its final phase. On Fashion-MNIST
in 15 minutes that fitness was measured after a few thousand training examples, rounded to 2 digits
(``AccuracyVsSize``), so several members tie or nearly tie, at very different speeds. This study asks whether
another of them would have ended better: each member given here trains from its checkpointed state (weights and
kept optimiser state) with ``train_best`` (the final phase's step-decayed learning rate and re-planned epochs, the
same key ``fit`` uses) until ``--seconds`` have passed, on the same training and validation split as ``fit``.

Run after a search, for example::

    naivega fit --dataset fashion-mnist --seed 0 --time-budget 15m --generations 100000 --out runs/fm0
    .venv/bin/python benchmarks/studies/probe_final_member.py runs/fm0/checkpoints/gen_000001 --members 18 19 \\
        --seconds 445

One line of JSON per member (its fitness, parameters, batch size, optimiser, the search's seconds per epoch, the
final epochs, validation and test accuracy). Members run one after the other in this process: run it with nothing
else on the machine, as the seconds decide how much each trains.
Findings: benchmarks/RESULTS.md, "Fashion-MNIST, 15 minutes" (session 10).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import jax
import optax

import naivega_jax as ng
from naivega_jax.autofit._data import VALIDATION_SPLIT, prepare_data
from naivega_jax.autofit._final import FINAL_KEY_LABEL, train_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a generation's checkpoint directory of a Fashion-MNIST run")
    parser.add_argument("--members", type=int, nargs="+", required=True, help="indices in that population")
    parser.add_argument("--seconds", type=float, required=True, help="final-phase time per member")
    args = parser.parse_args()
    x, y, x_test, y_test = ng.datasets.load("fashion-mnist")
    x_tr, y_tr, x_val, y_val, _, _ = prepare_data(x, y, VALIDATION_SPLIT)
    population, key, _ = ng.io.load_checkpoint(args.checkpoint)
    if key is None:
        raise SystemExit(f"checkpoint: {args.checkpoint} holds no run key; give a checkpoint that fit wrote")
    for j in args.members:
        member = population[j]
        if "final" in member.info:
            raise SystemExit(f"--members: member {j} already had a final phase in this checkpoint")
        info = member.info
        result = {
            "member": j,
            "fitness": member.fitness,
            "search_seconds_per_epoch": info["train_seconds"] / info["train_examples"] * len(y_tr),
            **final_phase(key, member, (x_tr, y_tr, x_val, y_val), (x_test, y_test), args.seconds),
        }
        print(json.dumps(result), flush=True)


def final_phase(key: Any, member: Any, splits: tuple, test: tuple, seconds: float) -> dict[str, Any]:
    """Trains ``member`` as the final phase of the run with ``key`` would (``train_best`` with its final key) for
    ``seconds`` on ``splits`` (``fit``'s training and validation parts); what it became: size, batch size,
    optimiser, final epochs, validation and ``test`` accuracy, wall seconds."""
    x_tr, y_tr, x_val, y_val = splits
    t0 = time.monotonic()
    trained, record = train_best(
        jax.random.fold_in(key, FINAL_KEY_LABEL),
        member,
        (x_tr, y_tr),
        (x_val, y_val),
        loss=optax.softmax_cross_entropy_with_integer_labels,
        deadline=t0 + seconds,
        say=print,
    )
    return {
        "nparams": ng.nparams(member.graph),
        "batch_size": member.batch_size,
        "optimiser": str(member.optimiser),
        "final_epochs": record["epochs"],
        "validation_accuracy": record["validation_accuracy"],
        "test_accuracy": float(ng.evaluate_accuracy(trained.graph, *test)),
        "wall_seconds": time.monotonic() - t0,
    }


if __name__ == "__main__":
    main()
