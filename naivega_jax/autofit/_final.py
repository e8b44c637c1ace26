"""The end of a run: the best candidate trained on for the share of the budget kept for it, with a decaying learning
rate, keeping the weights that scored best on the validation split."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..evolution import Candidate, learning_rate_plan
from ..graph import nparams
from ..train import as_optimiser, evaluate_accuracy, sum_call_stats, train_graph
from ..train.internal import opt_state_fits
from ._summary import final_score, format_epochs

#: the final phase's learning-rate steps: a share of its epochs at each factor of the candidate's own learning rate
#: (a step decay; the optimiser state runs on through the steps, from the candidate's kept state if it has one: a
#: fresh AdaGrad or RMSProp state takes huge first steps, which can undo what the search trained)
LR_STEPS = ((0.5, 1.0), (0.3, 0.3), (0.2, 0.1))
#: under a deadline, a step of fewer epochs than this is not started: its validation pass would cost more than it
#: trains (a step's epochs need not be whole: the rest of an epoch trains on a random subset of the examples)
MIN_STEP_EPOCHS = 0.05
#: under a deadline, a candidate with no speed reading first trains this many epochs at its learning rate, which
#: time it; the steps are then planned from that (without it, one untimed epoch)
SPEED_PROBE_EPOCHS = 0.05
#: ``fit``'s final phase trains with ``jax.random.fold_in(run_key, FINAL_KEY_LABEL)``: no generation uses this label
FINAL_KEY_LABEL = 2**31 - 1
#: under a time budget, the share of the final phase's time in which its entrants race (``race``); the winner trains
#: on for the rest
RACE_SHARE = 0.4
#: the entrants of a race train with ``jax.random.fold_in(fold_in(final_key, RACE_KEY_LABEL), entrant)``
RACE_KEY_LABEL = 2**31 - 2


def final_plan(epochs: int) -> list[tuple[int, float]]:
    """``(epochs, learning-rate factor)`` per step of a final phase of ``epochs`` epochs (steps of 0 epochs dropped).

    Example:
        >>> from naivega_jax.autofit._final import final_plan
        >>> final_plan(10), final_plan(2), final_plan(1)
        ([(5, 1.0), (3, 0.3), (2, 0.1)], [(1, 1.0), (1, 0.3)], [(1, 1.0)])
    """
    return learning_rate_plan(epochs, LR_STEPS)


def train_best(
    key: jax.Array,
    candidate: Candidate,
    train_data: tuple[Any, Any],
    val_data: tuple[Any, Any],
    *,
    loss: Any,
    score: Any = None,
    epochs: int | None = None,
    deadline: float | None = None,
    say=lambda text: None,
    default_optimiser: Any = None,
) -> tuple[Candidate, dict[str, Any]]:
    """Trains ``candidate`` on for ``epochs`` epochs, or until ``deadline`` (``time.monotonic()``) by the epoch time
    measured so far, in ``final_plan`` steps; returns the candidate with the weights of the step that scored best
    on ``val_data`` (its fitness unchanged: it was scored by the search; a kept optimiser state is the one those
    weights ended with) and what happened (``info["final"]``).

    Under a deadline each step takes its share of the epochs that fit in the time left, whole or not: a fraction
    of an epoch trains on that fraction of the examples, drawn at random, so the time is used to its end however
    long an epoch takes (the record's ``epochs`` are then passes over ``train_data``: ``train_examples / n``). The
    time left is what remains after the validation passes (and compiles) of the steps still to come, each as long as
    the last one: a large model's passes take seconds, and the phase ends by the deadline.

    A candidate with no speed reading in its ``info`` (``epoch_seconds``: one the search did not train, or whose
    last generation the time cut) first trains ``SPEED_PROBE_EPOCHS`` at its learning rate, which times it; without
    a deadline it trains ``epochs`` (one when None).

    Steps are compared by validation accuracy (``validation_accuracy`` in the record), or, given ``score`` (a
    fitness on the validation data, e.g. ``MSEFitness`` for regression), by that (``validation_fitness``).
    A candidate without an optimiser trains with ``default_optimiser`` (the search's fitness's).
    """
    base = candidate.optimiser if candidate.optimiser is not None else default_optimiser
    if base is None:
        raise ValueError("train_best: the candidate has no optimiser and no default_optimiser was given")
    x, y = train_data
    n = int(np.shape(y)[0])
    if score is None:
        name = "validation_accuracy"

        def measure(graph):
            return evaluate_accuracy(graph, *val_data)
    else:
        name = "validation_fitness"
        score_key = jax.random.fold_in(key, len(LR_STEPS))  # the steps train with fold_in(key, 0..len - 1)

        def measure(graph):
            return score(score_key, candidate.replace(graph=graph)).fitness

    t_measure = time.monotonic()
    best_graph, best_acc, best_opt_state = candidate.graph, measure(candidate.graph), candidate.opt_state
    # under a deadline the plan keeps time for what each step still to come costs besides training: its validation
    # pass and its compile, as the last step's took. Before any step, this first pass's time (which includes
    # compiling the evaluation) is kept for the first step's pass alone
    measure_seconds, compile_seconds = time.monotonic() - t_measure, 0.0
    record: dict[str, Any] = {
        f"start_{name}": best_acc,
        "steps": [],
        "train_examples": 0,
        "epochs": 0,
        "train_seconds": 0.0,
        "compile_seconds": 0.0,
    }
    results = []
    per_epoch = epoch_seconds(candidate, n) if epochs is None else None
    graph, step_key, opt_state = candidate.graph, key, candidate.opt_state
    probed = 0.0  # epochs the speed probe trained: the first step's record counts them

    def settings_at(factor: float, params: Any, state: Any) -> tuple[dict[str, Any], Any]:
        """The training settings at ``factor`` x the learning rate, and ``state`` if it fits their optimiser (a kept
        state that does not fit starts fresh: None)."""
        optimiser = as_optimiser(base)
        optimiser = optimiser.with_learning_rate(optimiser.learning_rate * factor)
        if state is not None and not opt_state_fits(optimiser, params, state):
            state = None
        return {"optimiser": optimiser, "loss": loss, "batch_size": candidate.batch_size}, state

    if deadline is not None and epochs is None and per_epoch is None:
        # no speed reading (a member given from outside, or one the time left unscored in the search's last
        # generation): measure it on a first piece of the first step's training, then plan as for any member
        settings, opt_state = settings_at(1.0, graph.params, opt_state)
        calls, examples = _train_epochs(
            jax.random.fold_in(key, len(LR_STEPS) + 1), graph, x, y, SPEED_PROBE_EPOCHS, opt_state, settings
        )
        seconds = sum(r.train_seconds for r in calls)
        if examples and seconds > 0 and not calls[-1].nonfinite:
            results += calls
            record["train_seconds"] += seconds
            record["compile_seconds"] += sum(r.compile_seconds for r in calls)
            record["epochs"] += examples / n
            record["train_examples"] += examples
            graph, opt_state = calls[-1].graph, calls[-1].opt_state
            per_epoch = seconds / (examples / n)
            compile_seconds = max(r.compile_seconds for r in calls)
            probed = examples / n
    timed = deadline is not None and per_epoch is not None
    # timed: each step's epochs are planned when it starts; otherwise ``epochs`` (1 when neither is known)
    steps: Sequence[tuple[float, float]] = (
        [(0.0, factor) for _, factor in LR_STEPS] if timed else final_plan(max(0, 1 if epochs is None else epochs))
    )
    for i, (n_epochs, factor) in enumerate(steps):
        if timed:
            assert deadline is not None and per_epoch is not None
            # re-planned from the time left and the epoch time measured so far (the search's estimate includes
            # its compile thread's load, which the final phase does not have): the budget is used, not overrun
            per_step = measure_seconds + compile_seconds
            passes = len(steps) - i if record["steps"] else 1
            n_epochs = remaining_share_epochs(i, _epochs_until(deadline - passes * per_step, per_epoch))
            if n_epochs < MIN_STEP_EPOCHS:  # no time for every step's pass: this one takes all that is left
                n_epochs = _epochs_until(deadline - per_step, per_epoch)
                if n_epochs < MIN_STEP_EPOCHS:
                    break
        t0 = time.monotonic()
        settings, opt_state = settings_at(factor, graph.params, opt_state)
        calls, examples = _train_epochs(jax.random.fold_in(step_key, i), graph, x, y, n_epochs, opt_state, settings)
        if not calls:  # too few examples for a fraction of this size
            break
        results += calls
        train_seconds = sum(r.train_seconds for r in calls)
        record["train_seconds"] += train_seconds
        record["compile_seconds"] += sum(r.compile_seconds for r in calls)
        opt_state = calls[-1].opt_state
        seconds = time.monotonic() - t0
        if calls[-1].nonfinite:
            say(f"final training: {calls[-1].failure}; keeping the weights before this step")
            break
        done = examples / n
        per_epoch = train_seconds / done if done else per_epoch
        graph = calls[-1].graph
        t_measure = time.monotonic()
        acc = measure(graph)
        measure_seconds = time.monotonic() - t_measure
        compile_seconds = max(r.compile_seconds for r in calls)
        record["epochs"] += done
        record["train_examples"] += examples
        done, probed = done + probed, 0.0
        record["steps"].append({"epochs": done, "learning_rate_factor": factor, name: acc, "seconds": seconds})
        say(
            f"final training: {format_epochs(done)} epochs at {factor:g} x the learning rate, "
            f"{name.replace('_', ' ')} {acc:.4f} ({seconds:.0f} s)"
        )
        if acc >= best_acc:
            best_graph, best_acc, best_opt_state = graph, acc, opt_state
    record[name] = best_acc
    record["engine"] = sum_call_stats(results)  # the compiles and cache hits of the phase's training calls
    # a candidate that kept its optimiser state keeps the one its kept weights ended with: training on continues it
    kept = best_opt_state if candidate.opt_state is not None else None
    final = candidate.replace(graph=best_graph, opt_state=kept, info={**candidate.info, "final": record})
    return final.with_event("final_training", epochs=record["epochs"], **{name: best_acc}), record


def epoch_seconds(candidate: Candidate, n: int) -> float | None:
    """Seconds an epoch of ``n`` examples took ``candidate`` in its last training, as its ``info`` records it: per
    example where it counts them (a screened member's epoch was a share of the data), else per epoch; None when it
    records neither."""
    info = candidate.info
    if info.get("train_examples") and info.get("train_seconds"):
        return info["train_seconds"] / info["train_examples"] * n
    if info.get("train_epochs") and info.get("train_seconds"):
        return info["train_seconds"] / info["train_epochs"]
    return None


def race(
    key: jax.Array,
    entrants: Sequence[Candidate],
    train_data: tuple[Any, Any],
    val_data: tuple[Any, Any],
    *,
    seconds: float,
    say=lambda text: None,
    **train_kwargs: Any,
) -> tuple[int, list[tuple[Candidate, dict[str, Any]]]]:
    """Trains each of ``entrants`` as ``train_best`` would for an equal share of ``seconds`` (its step decay fitted
    into the share), one after the other; returns the index of the one that ended with the best validation score
    (the first of equals: give them best first) and each one's ``train_best`` result.

    A search's fitness compares members after equal training examples, and under a time budget they train at very
    different speeds (on Fashion-MNIST in 15 minutes, 30 to 400 s an epoch): the fittest may be too slow to train
    well in the time left, while another close behind trains several epochs in it. A race compares them in time.
    Entrant ``j``'s share ends at ``start + (j + 1) * seconds / len(entrants)``: what one leaves of its share (a step
    too short to start) goes to the next, what one overruns comes from the next, and the race ends in ``seconds``.
    """
    start = time.monotonic()
    share = seconds / len(entrants)
    key = jax.random.fold_in(key, RACE_KEY_LABEL)
    results = []
    for j, entrant in enumerate(entrants):
        trained, record = train_best(
            jax.random.fold_in(key, j), entrant, train_data, val_data, deadline=start + (j + 1) * share, **train_kwargs
        )
        measure = "validation accuracy" if "validation_accuracy" in record else "validation fitness"
        say(
            f"final race, entrant {j + 1}/{len(entrants)} (fitness {entrant.fitness:.4f}, "
            f"{nparams(entrant.graph):,} params): {format_epochs(record['epochs'])} epochs, "
            f"{measure} {final_score(record):.4f}"
        )
        results.append((trained, record))
    winner = max(range(len(results)), key=lambda j: (final_score(results[j][1]), -j))
    return winner, results


def remaining_share_epochs(step: int, epochs_left: float) -> float:
    """Epochs for ``LR_STEPS[step]`` when ``epochs_left`` epochs fit in the time left: its share of what the steps
    from ``step`` on share (the last step takes all that is left). Not whole numbers: see ``train_best``.

    Example:
        >>> from naivega_jax.autofit._final import remaining_share_epochs
        >>> remaining_share_epochs(0, 10), remaining_share_epochs(1, 5), remaining_share_epochs(2, 2.5)
        (5.0, 3.0, 2.5)
    """
    if epochs_left <= 0:
        return 0.0
    if step == len(LR_STEPS) - 1:
        return float(epochs_left)
    shares = [share for share, _ in LR_STEPS[step:]]
    return shares[0] / sum(shares) * epochs_left


def _epochs_until(deadline: float, per_epoch: float) -> float:
    left = deadline - time.monotonic()
    return max(0.0, left / (1.1 * per_epoch))  # 10% margin: the time budget is a promise


def _train_epochs(key, graph, x, y, epochs: float, opt_state, settings) -> tuple[list[Any], int]:
    """``epochs`` passes over ``(x, y)`` continuing ``opt_state``: the whole ones with ``train_graph`` (one call, as a
    whole number of epochs always is: the same key, the same result), then the fraction left on that fraction of
    the examples, drawn at random by ``key``. Returns the calls' results and the examples they trained on (a call
    stopped by a NaN/Inf loss ends the step and counts its completed epochs)."""
    n = int(np.shape(y)[0])
    whole = math.floor(epochs + 1e-9)
    part = round((epochs - whole) * n)
    results, examples = [], 0
    if whole:
        result = train_graph(key, graph, x, y, epochs=whole, opt_state=opt_state, **settings)
        results.append(result)
        examples += result.epochs * n
        if result.nonfinite:
            return results, examples
        graph, opt_state = result.graph, result.opt_state
    if part:
        chosen = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1), n)[:part])
        result = train_graph(jax.random.fold_in(key, 2), graph, x[chosen], y[chosen], opt_state=opt_state, **settings)
        results.append(result)
        examples += result.epochs * part
    return results, examples
