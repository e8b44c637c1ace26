"""The final phase under a deadline plans its epochs step by step from the epoch time it measures, whole or not."""

from __future__ import annotations

import time

import jax
import optax
import pytest

import naivega_jax as ng
from naivega_jax.autofit._final import LR_STEPS, _train_epochs, remaining_share_epochs, train_best

LOSS = optax.softmax_cross_entropy_with_integer_labels


def _digits_and_linear_model(n: int):
    """The first ``n`` digits as flat vectors, and a one-layer classifier for them (an epoch takes milliseconds)."""
    x, y, _, _ = ng.datasets.load("digits")
    x, y = x[:n].reshape(n, -1), y[:n]
    inp = ng.input_vertex("in", shape=x.shape[1:])
    return x, y, ng.build_graph(jax.random.key(0), inputs=inp, outputs=ng.vertex("out", ng.Dense(10), inp))


def test_remaining_share_epochs_splits_what_is_left_by_the_steps_shares():
    assert [remaining_share_epochs(0, n) for n in (0, 1, 2, 10, 24)] == pytest.approx([0, 0.5, 1, 5, 12])
    assert [remaining_share_epochs(1, n) for n in (0, 1, 5, 12)] == pytest.approx([0, 0.6, 3, 7.2])
    assert [remaining_share_epochs(len(LR_STEPS) - 1, n) for n in (0, 0.3, 7)] == pytest.approx([0, 0.3, 7])
    assert remaining_share_epochs(0, -1.0) == 0


def test_a_pessimistic_epoch_time_does_not_leave_the_deadline_unused():
    x, y, graph = _digits_and_linear_model(400)
    budget = 4.0
    # the search measured 1.8 s per epoch (its compile thread slowed it): 2 epochs seem to fit; an epoch takes ~ms
    info = {"train_epochs": 1, "train_seconds": budget / 2.2}
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64, info=info)
    train_best(
        jax.random.key(1), cand, (x, y), (x[:50], y[:50]), loss=LOSS, epochs=None, deadline=time.monotonic() + budget
    )
    t0 = time.monotonic()
    trained, record = train_best(
        jax.random.key(1),
        cand,
        (x, y),
        (x[:50], y[:50]),
        loss=LOSS,
        epochs=None,
        deadline=t0 + budget,
    )
    wall = time.monotonic() - t0
    assert record["epochs"] > 2  # the first step measured the epoch time; the later steps used it
    assert [s["learning_rate_factor"] for s in record["steps"]] == [f for _, f in LR_STEPS]
    # compiles (one per learning-rate step) are not planned for and take seconds on a loaded machine
    assert wall - record["compile_seconds"] < budget + 2.0
    assert record["epochs"] == sum(s["epochs"] for s in record["steps"])
    assert record["train_examples"] == pytest.approx(record["epochs"] * 400)
    assert trained.info["final"] is record


def test_a_member_with_no_speed_reading_is_timed_on_a_first_piece_and_trains_to_the_deadline():
    x, y, graph = _digits_and_linear_model(400)
    budget = 3.0
    # no info: a member given from outside, or one the time left unscored; it used to train one untimed epoch
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64)
    train_best(jax.random.key(1), cand, (x, y), (x[:50], y[:50]), loss=LOSS, deadline=time.monotonic() + budget)
    t0 = time.monotonic()
    _, record = train_best(jax.random.key(1), cand, (x, y), (x[:50], y[:50]), loss=LOSS, deadline=t0 + budget)
    wall = time.monotonic() - t0
    assert record["epochs"] > 5  # an epoch takes milliseconds
    assert [s["learning_rate_factor"] for s in record["steps"]] == [f for _, f in LR_STEPS]
    assert wall - record["compile_seconds"] < budget + 2.0
    # the first step's record counts the piece that timed it
    assert record["epochs"] == pytest.approx(sum(s["epochs"] for s in record["steps"]))
    assert record["train_examples"] == pytest.approx(record["epochs"] * 400)
    # without a deadline nothing is timed: one epoch, as before
    _, untimed = train_best(jax.random.key(1), cand, (x, y), (x[:50], y[:50]), loss=LOSS)
    assert untimed["epochs"] == 1 and len(untimed["steps"]) == 1


def test_a_deadline_with_no_time_for_one_epoch_trains_nothing():
    seconds = 100.0
    x, y, graph = _digits_and_linear_model(100)
    cand = ng.Candidate(
        graph, optimiser=ng.Adam(1e-3), batch_size=64, info={"train_epochs": 1, "train_seconds": seconds}
    )
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 1.0)
    assert record["epochs"] == 0 and record["steps"] == []


def test_the_epoch_time_comes_from_the_examples_a_screened_member_trained_on():
    x, y, graph = _digits_and_linear_model(100)
    # one "epoch" of a tenth of the data took 1/8 of the time left: a whole epoch takes longer than all of it, so
    # the first step trains half of the ~0.7 epochs that fit (per "epoch" it would have planned ~3.6 epochs)
    info = {"train_epochs": 1, "train_examples": 10, "train_seconds": 2.0 / 8}
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64, info=info)
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 2.0)
    first = record["steps"][0]["epochs"]
    assert 0.3 <= first <= 2.0 / (1.1 * 2.5) / 2 + 1e-9


def test_a_deadline_shorter_than_an_epoch_trains_fractions_of_one_on_random_examples():
    """Steps are not rounded to whole epochs (an epoch that takes a sixth of the time budget would leave up to a sixth
    of it unused): a fraction of an epoch trains on that fraction of the examples, drawn by the key."""
    x, y, graph = _digits_and_linear_model(200)
    # the search measured 10 s an epoch; the first step has 4 s: 0.5 x 4 / (1.1 x 10) = 0.18 epochs, 36 examples
    info = {"train_epochs": 1, "train_examples": 200, "train_seconds": 10.0}
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=16, info=info)
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 4.0)
    steps = record["steps"]
    assert 0.14 <= steps[0]["epochs"] <= 0.5 * 4.0 / 11.0 + 1e-9
    assert steps[0]["epochs"] * 200 == pytest.approx(round(steps[0]["epochs"] * 200))  # whole examples
    # the first step measured the real epoch time (milliseconds, and a compile): the later steps fill the time left
    assert len(steps) >= 2 and record["epochs"] > steps[0]["epochs"] + 1
    assert record["train_examples"] == pytest.approx(record["epochs"] * 200)
    assert record["epochs"] == pytest.approx(sum(s["epochs"] for s in steps))
    # a fraction of an epoch: whole epochs as one call, then the fraction's examples, drawn by the key
    settings = {"optimiser": ng.Adam(1e-3), "loss": LOSS, "batch_size": 16}
    leaves = lambda key, epochs: [
        jax.tree_util.tree_leaves(r.graph.params) for r in _train_epochs(key, graph, x, y, epochs, None, settings)[0]
    ]
    a, b, c = leaves(jax.random.key(3), 1.5), leaves(jax.random.key(3), 1.5), leaves(jax.random.key(4), 1.5)
    assert len(a) == 2 and _train_epochs(jax.random.key(3), graph, x, y, 1.5, None, settings)[1] == 300
    assert all((u == v).all() for u, v in zip(a[1], b[1]))
    assert not all((u == v).all() for u, v in zip(a[1], c[1]))
    whole = leaves(jax.random.key(3), 2.0)
    assert len(whole) == 1 and _train_epochs(jax.random.key(3), graph, x, y, 0.25, None, settings)[1] == 50


class _SlowScore:
    """A validation fitness that takes ``seconds`` each time, as a large model's validation pass does."""

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def __call__(self, key, candidate):
        self.calls += 1
        time.sleep(self.seconds)
        return candidate.replace(fitness=0.5)


def test_the_plan_keeps_time_for_the_validation_passes():
    """Each step ends with a validation pass, which on a large model takes seconds: the steps' epochs are planned in
    the time left after the passes still to come, so the phase ends by its deadline."""
    x, y, graph = _digits_and_linear_model(400)
    budget, measure = 10.0, 2.5
    cand = ng.Candidate(graph, optimiser=ng.Adam(1e-3), batch_size=64, info={"train_epochs": 1, "train_seconds": 1.0})
    train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, deadline=time.monotonic() + 1.0)  # compiles
    score = _SlowScore(measure)
    t0 = time.monotonic()
    _, record = train_best(jax.random.key(1), cand, (x, y), (x, y), loss=LOSS, score=score, deadline=t0 + budget)
    wall = time.monotonic() - t0
    assert score.calls == 1 + len(record["steps"]) and record["steps"]  # the start and every step were scored
    # without the passes in the plan the steps would train for the whole budget, and the 4 passes come on top
    assert wall - record["compile_seconds"] < budget + 1.0
    assert len(record["steps"]) >= 2 and wall > budget / 2  # and the time between the passes trained
